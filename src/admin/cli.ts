// The admin commands: `npm run setup|deploy|status|settings -- [options]`. Arguments are parsed strictly: an
// unknown flag or a missing value is exit code 2 before any request; `--help` prints and does nothing.
import type { MedplumClient } from '@medplum/core';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { parseCommandLine } from './command-line';
import { QuotaPacer } from '../sla/quota-pacer';
import { connect, connectionEnv, dotEnvFile, loadDotEnv } from './connect';
import { deployBot, deployProblems, policyGap, policyGapProblem } from './deploy';
import { applySetup, checkRuleSecrets, describePlan, planSetup, readProjectState, RUNTIMES } from './project-setup';
import type { BotConfig, ProjectState, SetupOptions } from './project-setup';
import { describeUnjudged, unjudgedOwners } from './data-checks';
import { formatStatus, ownerNames, readStatus } from './project-status';
import { updateSecrets } from './project-secrets';
import { cronSecretProblems, describeSecrets, parseSettingsWords, planSecretsChange } from './settings';
import { obsoleteSecrets, secretProblems } from '../lib/secret-catalogue';
import type { ProjectSetting, Resource } from '@medplum/fhirtypes';
import { appOf, loadExample, removeExample } from './example';
import type { ExampleIo } from './example';

const COMMON = `  --env NAME           another environment: medplum.NAME.config.json (its Bot ids) instead of
                       medplum.config.json, and .env.NAME (its server and credentials) instead of .env
  --help               this text, and nothing else

Server and credentials: MEDPLUM_BASE_URL (default https://api.medplum.com/), MEDPLUM_CLIENT_ID and
MEDPLUM_CLIENT_SECRET, from the environment or a .env file (.env.NAME with --env NAME; .env is then
not read). Variables already set in the environment win over the file.`;

const USAGE: Record<string, string> = {
  setup: `Usage: npm run setup -- [options]

Makes the Project ready for the bots: the two Bots (with ProjectMembership), their AccessPolicies,
the Subscription of the OOO bot, both Bots' cron and timeout, and defaults for the settings that never
existed (a setting it added before and an admin removed stays removed).
Changes only what it created (tagged ${'`urn:medplum-messaging-bots`'}), keeps what an admin set by hand,
never prints a secret value. One exception, said by id: of the Subscriptions that send thread messages
to the OOO bot (tagged or not, whatever their criteria), it keeps one and turns the others off, since
each would run the bot once more per message. Needs a Project admin client.

Options:
  --dry-run            print the plan and write nothing (without credentials: the plan for an empty Project)
  --verbose            with the plan, each resource as FHIR JSON (never secrets)
  --adopt              take over existing Bots of the same names that setup did not create: their
                       Subscription becomes setup's, their membership gets setup's AccessPolicy, and
                       their ids are written to the config file
  --reset-bot-settings apply the secrets' cron and timeout over values set by hand, and turn a paused
                       Subscription back on
  --runtime RUNTIME    vmcontext or awslambda for the Bots (default: leave the server's default;
                       Medplum's hosted service runs awslambda, vmcontext needs vmContextBotsEnabled)
${COMMON}`,
  deploy: `Usage: npm run deploy -- [options]

Builds (npm run build), then uploads each bot's source and bundle (what \`medplum bot deploy\` does), through the API so
that a failure shows the server's reason. Checks credentials, Bot ids and files first, and deploys nothing when a
Bot's AccessPolicy lacks what this version uses (after an upgrade: run npm run setup first).

Options:
${COMMON}`,
  status: `Usage: npm run status -- [options]

Prints, per bot: deployed, runtime, membership, AccessPolicy (and what it lacks), Subscription and
cron, timeout, what its last runs did, and the runs of its cron's last ticks by kind (sweeps; hourly
runs and full reconciles), found among any number of runs for messages. Then the problems found:
wiring, secrets the bots would ignore, scheduled runs that failed, stopped early or deferred work
three times running, or did not happen when the cron says they should, a run of failed runs for
messages, messages the Subscription did not deliver, and owners of open Tasks whose working hours
cannot be judged. Exits 1 when there is a problem, with the fix.

Options:
  --data               only the checks of the Project's data and secrets
  --verbose            full ids, and every line the last runs logged
${COMMON}`,
};

USAGE.settings = `Usage: npm run settings -- get [NAME...] | set NAME=VALUE [NAME=VALUE...] | unset NAME... [options]

Reads and changes the Bot secrets these bots read. Every value is checked by the bots' own validator
before anything is written: a bad value is refused with the reason (exit 2) and nothing changes. A
change is merged into the Project's secrets: other integrations' secrets are kept, and only their
names are shown. The list is written with the Project's version: when another admin changed it
meanwhile, it is read again and the change made on top of theirs. Needs a Project admin client.

  get                  every secret the bots read, its value or what the bot does without it
  set NAME=VALUE       set one or more (quote values with spaces or JSON: 'STALE_RULES=[...]')
  unset NAME           remove one or more; the bot goes back to its default

Options:
  --dry-run            check and show the change; write nothing
${COMMON}`;

USAGE.example = `Usage: npm run example -- [--yes] [--remove] [options]

Loads the README's example clinic (examples/*.json) into the Project: a patient, Dr Ada with her
working hours and a vacation that covers now, their thread, her response Task, and last the
patient's message, which runs the OOO bot: within seconds the Task goes to the team pool with a note.
Each resource gets a server id, the references between them are rewritten, every date is moved so
that the patient writes now, and each is tagged urn:medplum-messaging-bots|example. Without --yes
nothing is written: the plan is printed. Run it after npm run setup and npm run deploy.

Options:
  --yes                write (default: a dry run)
  --remove             take the example out instead: what carries its tag, and the Tasks the bots
                       made on its thread (with --yes; without, the list)
  --wait SECONDS       after loading, watch the Task this long for the reroute (default 10; 0: do not)
  --app-url URL        where the Medplum App opens the Task (default: the App of MEDPLUM_BASE_URL,
                       https://app.medplum.com/ for the hosted service)
${COMMON}`;

const OPTIONS: Record<string, NonNullable<ParseArgsConfig['options']>> = {
  setup: {
    'dry-run': { type: 'boolean' },
    verbose: { type: 'boolean' },
    adopt: { type: 'boolean' },
    'reset-bot-settings': { type: 'boolean' },
    runtime: { type: 'string' },
  },
  deploy: {},
  status: { data: { type: 'boolean' }, verbose: { type: 'boolean' } },
  settings: { 'dry-run': { type: 'boolean' } },
  example: { yes: { type: 'boolean' }, remove: { type: 'boolean' }, wait: { type: 'string' }, 'app-url': { type: 'string' } },
};

/** Where output goes (tests). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Connects to the server (tests give the harness's client). */
  connect?: () => Promise<MedplumClient>;
  /** Reads files (tests). */
  readFile?: (path: string) => string;
  /** Whether a config file exists and its size (tests). */
  fileSize?: (path: string) => number | undefined;
  writeFile?: (path: string, text: string) => void;
  /** The environment (tests); by default the process's, with .env (or .env.NAME) loaded. */
  env?: NodeJS.ProcessEnv;
  /** Loads a dotenv file into the environment (tests); by default process.loadEnvFile. */
  loadEnvFile?: (path: string) => void;
  /** Waits (tests); by default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Builds the bundles before a deploy (tests); by default `node esbuild.config.mjs`. Returns success. */
  build?: () => boolean;
}

const defaultIo = (): CliIo => ({
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});

/**
 * Runs an admin command.
 * @param argv - Command and options.
 * @param io - Output and injected server (tests).
 * @returns The process exit code: 0 done, 1 failed or problems found, 2 bad arguments.
 */
export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || !(command in USAGE)) {
    io.err(`usage: npm run (setup|deploy|status|settings|example) -- [options]; add --help for each command's options`);
    return 2;
  }
  const parsed = parseCommandLine(
    rest,
    { ...OPTIONS[command], env: { type: 'string' } },
    USAGE[command],
    { out: io.out, err: (text) => io.err(`${command}: ${text}`) },
    { allow: command === 'settings' }
  );
  if ('exit' in parsed) {
    return parsed.exit;
  }
  const request = command === 'settings' ? parseSettingsWords(parsed.positionals) : undefined;
  if (request && 'error' in request) {
    io.err(`settings: ${request.error}\n\n${USAGE.settings}`);
    return 2;
  }
  const { values } = parsed;
  const env = values.env as string | undefined;
  if (env !== undefined && !/^[A-Za-z0-9_-]+$/.test(env)) {
    io.err(`${command}: --env takes a name like staging (letters, digits, - and _)`);
    return 2;
  }
  const runtime = values.runtime as string | undefined;
  if (runtime !== undefined && !RUNTIMES.includes(runtime as (typeof RUNTIMES)[number])) {
    io.err(`${command}: --runtime must be ${RUNTIMES.join(' or ')}`);
    return 2;
  }
  const configFile = env ? `medplum.${env}.config.json` : 'medplum.config.json';
  const read = io.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const size = io.fileSize ?? ((path: string) => (existsSync(path) ? statSync(path).size : undefined));
  const loadEnv = (): void => {
    if (io.env) {
      return; // an environment given (tests): no file is read
    }
    const file = dotEnvFile(env, (path) => size(path) !== undefined);
    if (file) {
      (io.loadEnvFile ?? loadDotEnv)(file);
    }
    if (env) {
      io.err(
        file
          ? `--env ${env}: server and credentials from ${file} (variables already set in the environment win)`
          : `--env ${env}: no .env.${env}; server and credentials from the environment only (.env is not read: it holds another environment's)`
      );
    }
  };
  if (command === 'example') {
    const wait = values.wait === undefined ? 10 : Number(values.wait);
    if (!Number.isInteger(wait) || wait < 0 || wait > 120) {
      io.err('example: --wait takes whole seconds from 0 to 120');
      return 2;
    }
    const appUrl = values['app-url'] as string | undefined;
    if (appUrl !== undefined && !/^https?:\/\/\S+$/.test(appUrl)) {
      io.err('example: --app-url must be an http(s) URL');
      return 2;
    }
    loadEnv();
    const server = connectionEnv(io.env);
    try {
      const medplum = await (io.connect ?? (() => connect(server)))();
      io.out(`Project ${medplum.getProject()?.id ?? '?'} on ${server.MEDPLUM_BASE_URL}`);
      if (values.remove) {
        return await removeExample(medplum, io, { yes: !!values.yes });
      }
      const exampleIo: ExampleIo = {
        readExample: (name) => JSON.parse(read(`examples/${name}.json`)) as Resource,
        now: () => Date.now(),
        sleep: io.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
        out: io.out,
      };
      return await loadExample(medplum, exampleIo, { yes: !!values.yes, waitSeconds: wait, appUrl: appUrl ?? appOf(server.MEDPLUM_BASE_URL) });
    } catch (err) {
      io.err(`example failed: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
  if (request && !('error' in request)) {
    loadEnv();
    const server = connectionEnv(io.env);
    try {
      return await settings(io, request, io.connect ?? (() => connect(server)), !!values['dry-run']);
    } catch (err) {
      io.err(`settings failed: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
  if (size(configFile) === undefined) {
    io.err(
      `${configFile} not found` +
        (env ? `: --env ${env} reads medplum.${env}.config.json. Make it with: cp medplum.config.json medplum.${env}.config.json (setup writes that environment's Bot ids into it)` : '')
    );
    return 1;
  }
  const config = JSON.parse(read(configFile)) as { bots: BotConfig[] };
  loadEnv();
  const server = connectionEnv(io.env);
  const login = io.connect ?? (() => connect(server));
  try {
    switch (command) {
      case 'deploy':
        return await deploy(io, configFile, config.bots, server, login, read, size);
      case 'setup':
        return await setup(io, configFile, config, server, login, {
          dryRun: !!values['dry-run'],
          verbose: !!values.verbose,
          adopt: !!values.adopt,
          resetBotSettings: !!values['reset-bot-settings'],
          runtime: runtime as SetupOptions['runtime'],
        });
      default:
        return await status(io, config.bots, server.MEDPLUM_BASE_URL, login, { data: !!values.data, verbose: !!values.verbose });
    }
  } catch (err) {
    io.err(`${command} failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

async function deploy(
  io: CliIo,
  configFile: string,
  bots: BotConfig[],
  server: ReturnType<typeof connectionEnv>,
  login: () => Promise<MedplumClient>,
  read: (path: string) => string,
  size: (path: string) => number | undefined
): Promise<number> {
  const built = io.build ?? (() => spawnSync(process.execPath, ['esbuild.config.mjs'], { stdio: 'inherit' }).status === 0);
  if (!built()) {
    io.err('the build failed (see above); nothing deployed');
    return 1;
  }
  const problems = deployProblems(server, configFile, bots, size);
  if (problems.length) {
    io.err(`Not deploying:\n${problems.map((p) => `- ${p}`).join('\n')}`);
    return 1;
  }
  const medplum = await login();
  io.out(`Deploying to ${server.MEDPLUM_BASE_URL} (Project ${medplum.getProject()?.id ?? 'of these credentials'}):`);
  const pacer = new QuotaPacer(medplum, { onWait: (s) => io.out(`waiting ${s} s for the FHIR quota to reset`) });
  // Code that needs a right its policy lacks would fail every run (a failed Subscription run is not retried): none is deployed.
  const gaps: string[] = [];
  for (const bot of bots) {
    const gap = await pacer.run(21, () => policyGap(medplum, bot));
    if (gap) {
      gaps.push(policyGapProblem(bot.name, gap));
    }
  }
  if (gaps.length) {
    io.err(`Not deploying:\n${gaps.map((p) => `- ${p}`).join('\n')}`);
    return 1;
  }
  let failed = 0;
  for (const bot of bots) {
    const result = await deployBot(medplum, bot, read, pacer);
    io.out(`${result.ok ? 'deployed' : 'FAILED  '} ${bot.name} (Bot/${bot.id}): ${result.message}`);
    failed += result.ok ? 0 : 1;
  }
  return failed ? 1 : 0;
}

async function setup(
  io: CliIo,
  configFile: string,
  config: { bots: BotConfig[] },
  server: ReturnType<typeof connectionEnv>,
  login: () => Promise<MedplumClient>,
  options: SetupOptions & { dryRun: boolean; verbose: boolean }
): Promise<number> {
  const hasCredentials = !!io.connect || (!!server.MEDPLUM_CLIENT_ID && !!server.MEDPLUM_CLIENT_SECRET);
  if (!hasCredentials && !options.dryRun) {
    io.err('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET (a Project admin client) are needed; `--dry-run` shows the plan without them');
    return 1;
  }
  let state: ProjectState = { projectId: '<project id>', secrets: [], bots: {} };
  let medplum: MedplumClient | undefined;
  if (hasCredentials) {
    medplum = await login();
    const projectId = process.env.MEDPLUM_PROJECT_ID || medplum.getProject()?.id;
    if (!projectId) {
      io.err('could not tell the Project of these credentials; set MEDPLUM_PROJECT_ID');
      return 1;
    }
    io.out(`Project ${projectId} on ${server.MEDPLUM_BASE_URL}`);
    state = await readProjectState(medplum, projectId, config.bots);
  } else {
    io.out('No credentials: the plan for an empty Project.');
  }
  if (state.features && !state.features.includes('bots')) {
    io.err('The Project lacks the "bots" feature; only a super admin can enable it. Nothing was changed.');
    return 1;
  }
  if (state.features && !state.features.includes('cron')) {
    io.err('Warning: the Project lacks the "cron" feature (a super admin enables it): neither the sweep nor the reminders will run on schedule.');
  }
  const plan = planSetup(state, config.bots, options);
  const ruleLines = checkRuleSecrets(state.secrets);
  const secretLines = [...secretProblems(state.secrets), ...cronSecretProblems(state.secrets)];
  const problems = (): number => {
    obsoleteSecrets(state.secrets).forEach((l) => io.out(`Note: ${l}`));
    secretLines.forEach((l) => io.err(`Problem: ${l}`));
    return secretLines.length ? 1 : 0;
  };
  const undeployed = config.bots.filter((b) => !state.bots[b.name]?.bot?.executableCode).map((b) => b.name);
  const nextDeploy = (): void => {
    if (undeployed.length) {
      io.out(`next: npm run deploy (${undeployed.join(', ')} ${undeployed.length > 1 ? 'have' : 'has'} no code yet)`);
    }
  };
  if (plan.blockers.length) {
    io.err(`Not changing anything:\n${plan.blockers.map((b) => `- ${b}`).join('\n')}`);
    return 1;
  }
  if (options.dryRun || !medplum) {
    io.out(describePlan(plan, options.verbose).join('\n') || 'Nothing to change.');
    ruleLines.forEach((l) => io.out(l));
    const writes = plan.steps.filter((s) => s.action !== 'keep').length;
    io.out(writes ? `${writes} change(s); nothing written (dry run).` : 'Nothing to change.');
    return problems();
  }
  ruleLines.forEach((l) => io.out(l));
  // The ids of the Bots setup uses go to the config file, also when nothing else changes (a fresh
  // clone of a repository whose config still has placeholders, on a Project already set up).
  const writeIds = (botIds: Record<string, string | undefined>): void => {
    const updated = config.bots.map((b) => ({ ...b, id: botIds[b.name] ?? b.id }));
    if (updated.some((b, i) => b.id !== config.bots[i].id)) {
      (io.writeFile ?? writeFileSync)(configFile, JSON.stringify({ ...config, bots: updated }, null, 2) + '\n');
      io.out(`Bot ids written to ${configFile}: ${updated.map((b) => `${b.name} Bot/${b.id}`).join(', ')}.`);
    }
  };
  if (!plan.steps.some((s) => s.action !== 'keep')) {
    plan.steps.forEach((s) => io.out(`kept${s.bot ? ` [${s.bot}]` : ''}: ${s.why}`));
    writeIds(Object.fromEntries(config.bots.map((b) => [b.name, state.bots[b.name]?.bot?.id])));
    io.out(undeployed.length ? 'Nothing to change.' : 'Nothing to change: the Project is ready.');
    nextDeploy();
    return problems();
  }
  const result = await applySetup(medplum, state, config.bots, options, io.out);
  writeIds(result.botIds);
  io.out(`${result.applied.length} change(s) applied.`);
  nextDeploy();
  return problems();
}

async function settings(
  io: CliIo,
  request: Exclude<ReturnType<typeof parseSettingsWords>, { error: string }>,
  login: () => Promise<MedplumClient>,
  dryRun: boolean
): Promise<number> {
  const medplum = await login();
  const projectId = process.env.MEDPLUM_PROJECT_ID || medplum.getProject()?.id;
  if (!projectId) {
    io.err('could not tell the Project of these credentials; set MEDPLUM_PROJECT_ID');
    return 1;
  }
  const admin = await medplum.get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' });
  const current = admin.project.secret ?? [];
  if (request.verb === 'get') {
    const described = describeSecrets(current, request.names);
    if ('error' in described) {
      io.err(`settings: ${described.error}`);
      return 2;
    }
    described.lines.forEach((l) => io.out(l));
    return 0;
  }
  const first = planSecretsChange(current, request);
  if ('refused' in first) {
    io.err(`Refused, nothing written:\n${first.refused.map((r) => `- ${r}`).join('\n')}`);
    return 2;
  }
  const touched = new Set(request.verb === 'set' ? request.pairs.map(([name]) => name) : request.names);
  const others = (list: ProjectSetting[]): number => list.filter((s) => !touched.has(s.name)).length;
  if (dryRun) {
    first.lines.forEach((l) => io.out(l));
    io.out(JSON.stringify(first.next) === JSON.stringify(current) ? 'Nothing to change.' : `Dry run: nothing written. ${others(current)} other secret(s) would be kept.`);
    return 0;
  }
  // Written with the Project's version: another admin's change made meanwhile is read again and kept.
  const plan = (list: ProjectSetting[]): Exclude<ReturnType<typeof planSecretsChange>, { refused: string[] }> =>
    planSecretsChange(list, request) as Exclude<ReturnType<typeof planSecretsChange>, { refused: string[] }>;
  const result = await updateSecrets(medplum, projectId, (list) => {
    const next = plan(list).next;
    return JSON.stringify(next) === JSON.stringify(list) ? undefined : next;
  });
  const done = plan(result.before);
  done.lines.forEach((l) => io.out(l));
  if (!result.written) {
    io.out('Nothing to change.');
    return 0;
  }
  const retried = result.attempts > 1 ? ` (the secrets changed meanwhile: read again and written on top of that change, ${result.attempts} tries)` : '';
  io.out(`Written to Project ${projectId}; ${others(result.after)} other secret(s) kept as they were${retried}.`);
  done.next_steps.forEach((s) => io.out(`next: ${s}`));
  return 0;
}

async function status(
  io: CliIo,
  bots: BotConfig[],
  baseUrl: string,
  login: () => Promise<MedplumClient>,
  options: { data: boolean; verbose: boolean }
): Promise<number> {
  const medplum = await login();
  io.out(`Project ${medplum.getProject()?.id ?? '?'} on ${baseUrl}`);
  const result = await readStatus(medplum, bots, { wiring: !options.data });
  const serviceTypes = (result.secrets?.find((s) => s.name === 'OOO_SERVICE_TYPE')?.valueString ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const unjudged = await unjudgedOwners(medplum, serviceTypes);
  // Owners by name and id (an admin's terminal; names of providers, never message text).
  const names = await ownerNames(medplum, unjudged.flatMap((e) => e.owners.map((o) => o.owner)));
  const named = unjudged.map((e) => ({ ...e, owners: e.owners.map((o) => ({ ...o, owner: names.has(o.owner) ? `${names.get(o.owner)} [${o.owner}]` : o.owner })) }));
  const data = describeUnjudged(named, options.verbose);
  io.out(formatStatus(result, { verbose: options.verbose, data }));
  return result.problems.length || data.length || result.bots.some((b) => b.problems.length) ? 1 : 0;
}
