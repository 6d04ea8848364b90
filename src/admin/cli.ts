// The admin commands: `npm run deploy|setup|status [-- --env NAME] [--dry-run]`.
// `--env staging` uses medplum.staging.config.json (the Medplum CLI's naming of tagged configs)
// instead of medplum.config.json, so staging and production keep their own Bot ids.
import { MedplumClient, normalizeErrorString } from '@medplum/core';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cliDeploySucceeded, DEFAULT_BASE_URL, deployProblems } from './deploy';
import type { DeployEnv } from './deploy';
import { applySetup, emptyProjectState, planSetup, readProjectState } from './project-setup';
import type { BotConfig } from './project-setup';
import { formatStatus, readStatus } from './project-status';

/**
 * Runs an admin command.
 * @param argv - Command and options.
 * @returns The process exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const env = rest.includes('--env') ? rest[rest.indexOf('--env') + 1] : undefined;
  const configFile = env ? `medplum.${env}.config.json` : 'medplum.config.json';
  if (!existsSync(configFile)) {
    console.error(`${configFile} not found`);
    return 1;
  }
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { bots: BotConfig[] };
  try {
    switch (command) {
      case 'deploy':
        return await deploy(configFile, config.bots);
      case 'setup':
        return await setup(configFile, config, rest.includes('--dry-run'));
      case 'status':
        return await status(config.bots);
      default:
        console.error('usage: cli (deploy|setup|status) [--env NAME] [--dry-run]');
        return 2;
    }
  } catch (err) {
    console.error(`${command} failed: ${normalizeErrorString(err)}`);
    return 1;
  }
}

function environment(): DeployEnv {
  return {
    // An unset CI secret arrives as an empty string.
    MEDPLUM_BASE_URL: process.env.MEDPLUM_BASE_URL || undefined,
    MEDPLUM_CLIENT_ID: process.env.MEDPLUM_CLIENT_ID,
    MEDPLUM_CLIENT_SECRET: process.env.MEDPLUM_CLIENT_SECRET,
  };
}

async function login(): Promise<MedplumClient | undefined> {
  const env = environment();
  if (!env.MEDPLUM_CLIENT_ID || !env.MEDPLUM_CLIENT_SECRET) {
    return undefined;
  }
  const medplum = new MedplumClient({ baseUrl: env.MEDPLUM_BASE_URL ?? DEFAULT_BASE_URL, fetch });
  await medplum.startClientLogin(env.MEDPLUM_CLIENT_ID, env.MEDPLUM_CLIENT_SECRET);
  return medplum;
}

async function deploy(configFile: string, bots: BotConfig[]): Promise<number> {
  const problems = deployProblems(environment(), configFile, bots, (path) => (existsSync(path) ? statSync(path).size : undefined));
  if (problems.length) {
    console.error(`Not deploying:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    return 1;
  }
  // The Medplum CLI reads ./medplum.config.json; for another environment it runs in a folder
  // holding that environment's config with absolute paths.
  let cwd = process.cwd();
  if (configFile !== 'medplum.config.json') {
    cwd = resolve('node_modules/.cache/deploy', configFile);
    mkdirSync(cwd, { recursive: true });
    const absolute = bots.map((b) => ({ ...b, source: resolve(b.source), dist: resolve(b.dist) }));
    writeFileSync(join(cwd, 'medplum.config.json'), JSON.stringify({ bots: absolute }, null, 2));
  }
  const cli = resolve('node_modules/@medplum/cli/dist/cjs/index.cjs');
  const childEnv = { ...process.env, MEDPLUM_BASE_URL: environment().MEDPLUM_BASE_URL ?? DEFAULT_BASE_URL };
  let failed = 0;
  for (const bot of bots) {
    const run = spawnSync(process.execPath, [cli, 'bot', 'deploy', bot.name], { cwd, encoding: 'utf8', env: childEnv });
    const output = `${run.stdout}${run.stderr}`;
    const ok = cliDeploySucceeded(run.status, output);
    console.log(`${ok ? 'deployed' : 'FAILED  '} ${bot.name} (Bot/${bot.id})`);
    if (!ok) {
      failed++;
      console.error(output.trim());
    }
  }
  return failed ? 1 : 0;
}

async function setup(configFile: string, config: { bots: BotConfig[] }, dryRun: boolean): Promise<number> {
  const medplum = await login();
  if (!medplum && !dryRun) {
    console.error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET (a Project admin client) are needed; `--dry-run` shows the plan without them');
    return 1;
  }
  const projectId = process.env.MEDPLUM_PROJECT_ID ?? medplum?.getProject()?.id;
  if (medplum && !projectId) {
    console.error('could not tell the Project of these credentials; set MEDPLUM_PROJECT_ID');
    return 1;
  }
  const state = medplum ? await readProjectState(medplum, projectId as string, config.bots) : emptyProjectState();
  if (state.features && !state.features.includes('bots')) {
    console.error('The Project lacks the "bots" feature; only a super admin can enable it. Nothing was changed.');
    return 1;
  }
  if (state.features && !state.features.includes('cron')) {
    console.warn('The Project lacks the "cron" feature (a super admin enables it): the stale-thread bot will not run on its schedule.');
  }
  const steps = planSetup(state, config.bots);
  if (dryRun) {
    console.log(medplum ? `Plan for Project ${projectId}:` : 'No credentials: plan for an empty Project:');
    for (const step of steps) {
      console.log(`\n# ${step.action}${step.bot ? ` [${step.bot}]` : ''}: ${step.why}\n${JSON.stringify(step.resource, null, 2)}`);
    }
    console.log(steps.length ? `\n${steps.length} change(s); nothing written (dry run).` : 'Nothing to change.');
    return 0;
  }
  if (!steps.length) {
    console.log('Nothing to change: the Project is ready.');
    return 0;
  }
  const result = await applySetup(medplum as MedplumClient, state, config.bots, (line) => console.log(line));
  const updated = config.bots.map((b) => ({ ...b, id: result.botIds[b.name] ?? b.id }));
  if (updated.some((b, i) => b.id !== config.bots[i].id)) {
    writeFileSync(configFile, JSON.stringify({ ...config, bots: updated }, null, 2) + '\n');
    console.log(`Bot ids written to ${configFile}.`);
  }
  console.log(`${result.applied.length} change(s) applied.`);
  return 0;
}

async function status(bots: BotConfig[]): Promise<number> {
  const medplum = await login();
  if (!medplum) {
    console.error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET are needed');
    return 1;
  }
  const result = await readStatus(medplum, bots);
  console.log(formatStatus(result));
  return result.problems.length || result.bots.some((b) => b.problems.length) ? 1 : 0;
}
