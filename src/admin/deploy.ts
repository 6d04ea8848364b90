// `npm run deploy`: uploads each built bot the way `medplum bot deploy` does (the source saved as the
// Bot's sourceCode, then `Bot/{id}/$deploy` with the bundle), through the API so that a failure shows
// the server's reason. (The Medplum CLI reports success when a dist file is missing, and prints
// "Number of errors: 1" without the reason when the server refuses, a 429 included.)
import { normalizeErrorString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { AccessPolicy, Bot, OperationOutcome } from '@medplum/fhirtypes';
import { basename } from 'node:path';
import { QuotaPacer } from '../sla/quota-pacer';
import type { ConnectionEnv } from './connect';
import type { BotConfig } from './project-setup';
import { BOT_WIRING, MANAGED_TAG_SYSTEM, PLACEHOLDER_BOT_ID } from './project-setup';
import { missingRights } from './project-status';

/**
 * Everything that would make a deploy fail or, worse, "succeed" without deploying.
 * @param env - The environment.
 * @param configFile - The config file name, for messages.
 * @param bots - Its bot entries.
 * @param fileSize - Size of a file in bytes, or undefined when it does not exist.
 * @returns One message per problem; empty when the deploy can go ahead.
 */
export function deployProblems(
  env: ConnectionEnv,
  configFile: string,
  bots: BotConfig[],
  fileSize: (path: string) => number | undefined
): string[] {
  const problems: string[] = [];
  for (const name of ['MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET'] as const) {
    if (!env[name]) {
      problems.push(`${name} is not set (client credentials of the Project, in the environment or .env)`);
    }
  }
  if (!bots.length) {
    problems.push(`${configFile} lists no bots`);
  }
  for (const bot of bots) {
    if (!bot.id || bot.id === PLACEHOLDER_BOT_ID || !/^[A-Za-z0-9\-.]{1,64}$/.test(bot.id)) {
      problems.push(`${bot.name}: no real Bot id in ${configFile} (run \`npm run setup\`, or put the id of the Bot there)`);
    }
    for (const [what, path] of [
      ['dist', bot.dist],
      ['source', bot.source],
    ] as const) {
      const size = fileSize(path);
      if (size === undefined) {
        problems.push(`${bot.name}: ${path} does not exist${what === 'dist' ? ' (run `npm run build`)' : ''}`);
      } else if (size === 0) {
        problems.push(`${bot.name}: ${path} is empty`);
      }
    }
  }
  return problems;
}

/**
 * What this version of a bot uses that the AccessPolicy on its Bot's membership does not grant. A
 * bot deployed without it fails at the first refused request (a new resource type or interaction
 * after an upgrade: CI deploys, setup updates the policy), so a deploy checks first.
 * @param medplum - A client of the Project (an admin's: memberships are read).
 * @param bot - The config entry.
 * @returns The policy's reference, whether setup made it, and what it lacks; undefined when it lacks nothing
 *   (or the membership has no policy, or it cannot be read: `npm run status` reports those).
 */
export async function policyGap(medplum: MedplumClient, bot: BotConfig): Promise<{ policy: string; ours: boolean; missing: string[] } | undefined> {
  const wiring = BOT_WIRING[bot.name];
  // Credentials that may deploy but not read memberships: nothing to check here (status says so).
  const membership = wiring && (await medplum.searchOne('ProjectMembership', { profile: `Bot/${bot.id}` }, { cache: 'no-cache' }).catch(() => undefined));
  if (!membership?.accessPolicy) {
    return undefined;
  }
  const policy = await medplum.readReference<AccessPolicy>(membership.accessPolicy).catch(() => undefined);
  const missing = policy ? missingRights(policy, wiring.accessPolicy) : [];
  if (!missing.length) {
    return undefined;
  }
  const ours = !!policy?.meta?.tag?.some((t) => t.system === MANAGED_TAG_SYSTEM && t.code === bot.name);
  return { policy: membership.accessPolicy.reference ?? 'AccessPolicy', ours, missing };
}

/**
 * The line a deploy refuses with when a bot's AccessPolicy lacks what this version uses.
 * @param bot - The bot's name.
 * @param gap - What policyGap found.
 * @returns One line.
 */
export function policyGapProblem(bot: string, gap: { policy: string; ours: boolean; missing: string[] }): string {
  const fix = gap.ours
    ? 'run `npm run setup` first (it updates the AccessPolicy it made), then deploy'
    : 'the policy is not one setup made: grant these in it (or give the Bot setup\'s with `npm run setup -- --adopt`), then deploy';
  return `${bot}: ${gap.policy} lacks what this version uses (${gap.missing.join(', ')}): ${fix}`;
}

/** What deploying one bot did. */
export interface DeployResult {
  bot: string;
  ok: boolean;
  /** The server's word: its outcome text on success, its reason on failure. */
  message: string;
}

/**
 * Deploys one bot: saves its source, then deploys its bundle.
 * @param medplum - A client of the Project.
 * @param bot - The config entry.
 * @param read - Reads a file's text.
 * @param pacer - Waits for the FHIR quota rather than fail on it.
 * @returns What happened, with the server's reason on failure.
 */
export async function deployBot(medplum: MedplumClient, bot: BotConfig, read: (path: string) => string, pacer: QuotaPacer): Promise<DeployResult> {
  try {
    const current = await pacer.run(1, () => medplum.readResource('Bot', bot.id));
    const sourceCode = await pacer.run(100, () =>
      medplum.createAttachment({ data: read(bot.source), filename: basename(bot.source), contentType: 'text/typescript' })
    );
    await pacer.run(100, () => medplum.patchResource('Bot', current.id, [{ op: current.sourceCode ? 'replace' : 'add', path: '/sourceCode', value: sourceCode }]));
    const outcome = await pacer.run(100, () =>
      medplum.post<OperationOutcome>(medplum.fhirUrl('Bot', current.id, '$deploy'), { code: read(bot.dist), filename: basename(bot.dist) })
    );
    const text = outcome.issue?.map((i) => i.details?.text ?? i.diagnostics).join('; ') ?? 'no outcome';
    const ok = outcome.issue?.every((i) => i.severity === 'information') ?? false;
    return { bot: bot.name, ok, message: `${(current as WithId<Bot>).runtimeVersion ?? 'default runtime'}: ${text}` };
  } catch (err) {
    return { bot: bot.name, ok: false, message: normalizeErrorString(err) };
  }
}
