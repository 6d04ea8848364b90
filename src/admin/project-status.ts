// `npm run status`: is each bot there, deployed, wired, allowed what it needs, and running well?
import type { MedplumClient } from '@medplum/core';
import type { AccessPolicy, AuditEvent, Bot, ProjectSetting, Subscription } from '@medplum/fhirtypes';
import Table from 'cli-table3';
import type { BotConfig } from './project-setup';
import { BOT_WIRING, MANAGED_TAG_SYSTEM, PLACEHOLDER_BOT_ID, SECRET_DEFAULTS } from './project-setup';

/** One bot's state. */
export interface BotStatus {
  name: string;
  id: string;
  exists: boolean;
  deployed: boolean;
  runtime?: string;
  membership: boolean;
  /** `ours`, the reference of another policy, or `none`. */
  accessPolicy: string;
  triggers: string[];
  timeout?: number;
  lastRuns: { time?: string; outcome: string }[];
  problems: string[];
}

/**
 * Reads each bot's state from the Project.
 * @param medplum - A client of the Project (a Project admin sees secrets and can check timeouts).
 * @param bots - The bot entries of the config.
 * @returns One status per bot, plus Project-level problems.
 */
export async function readStatus(medplum: MedplumClient, bots: BotConfig[]): Promise<{ bots: BotStatus[]; problems: string[] }> {
  const problems: string[] = [];
  const features = medplum.getProject()?.features;
  for (const feature of ['bots', 'cron']) {
    if (features && !features.includes(feature as never)) {
      problems.push(`the Project lacks the "${feature}" feature (only a super admin can enable it)`);
    }
  }
  const projectId = medplum.getProject()?.id;
  const secrets = projectId
    ? await medplum
        .get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' })
        .then((r) => r.project.secret ?? [], () => undefined)
    : undefined;
  const ourEndpoints = new Set(bots.map((b) => `Bot/${b.id}`));
  const criteria = new Set(Object.values(BOT_WIRING).flatMap((w) => (w.subscription ? [w.subscription.criteria] : [])));
  const subscriptions = await medplum.searchResources('Subscription', { _count: '1000' }, { cache: 'no-cache' });
  for (const sub of subscriptions) {
    if (criteria.has(sub.criteria) && sub.status === 'active' && !ourEndpoints.has(sub.channel?.endpoint ?? '')) {
      problems.push(`Subscription/${sub.id} (${sub.criteria}) sends to ${sub.channel?.endpoint}, which is not one of our Bots`);
    }
  }
  const statuses: BotStatus[] = [];
  for (const config of bots) {
    statuses.push(await botStatus(medplum, config, subscriptions, secrets));
  }
  return { bots: statuses, problems };
}

async function botStatus(medplum: MedplumClient, config: BotConfig, subscriptions: Subscription[], secrets: ProjectSetting[] | undefined): Promise<BotStatus> {
  const status: BotStatus = { name: config.name, id: config.id, exists: false, deployed: false, membership: false, accessPolicy: 'none', triggers: [], lastRuns: [], problems: [] };
  if (config.id === PLACEHOLDER_BOT_ID) {
    status.problems.push('no Bot id in the config (run `npm run setup`)');
    return status;
  }
  const bot = await medplum.readResource('Bot', config.id).catch(() => undefined as Bot | undefined);
  if (!bot) {
    status.problems.push(`Bot/${config.id} not found`);
    return status;
  }
  status.exists = true;
  status.deployed = !!bot.executableCode;
  status.runtime = bot.runtimeVersion ?? 'server default';
  status.timeout = bot.timeout;
  if (!status.deployed) {
    status.problems.push('never deployed (run `npm run deploy`)');
  }
  const wiring = BOT_WIRING[config.name];
  const membership = await medplum.searchOne('ProjectMembership', { profile: `Bot/${config.id}` }, { cache: 'no-cache' });
  status.membership = !!membership;
  if (!membership) {
    status.problems.push('no ProjectMembership: Subscriptions to this Bot fail (create it with the admin API / `npm run setup`)');
  } else if (!membership.accessPolicy) {
    status.problems.push('runs with the full rights of the Project (no AccessPolicy on its membership)');
  } else {
    const policy = await medplum.readReference<AccessPolicy>(membership.accessPolicy).catch(() => undefined);
    const ours = policy?.meta?.tag?.some((t) => t.system === MANAGED_TAG_SYSTEM && t.code === config.name);
    status.accessPolicy = ours ? 'ours' : (membership.accessPolicy.reference ?? 'unreadable');
    const missing = wiring && policy ? missingRights(policy, wiring.accessPolicy) : [];
    if (missing.length) {
      status.problems.push(`its AccessPolicy lacks what the bot uses: ${missing.join(', ')}`);
    }
  }
  if (wiring?.subscription) {
    const criteria = wiring.subscription.criteria;
    const mine = subscriptions.filter((s) => s.channel?.endpoint === `Bot/${config.id}`);
    status.triggers.push(...mine.map((s) => `Subscription/${s.id} ${s.status}`));
    if (!mine.some((s) => s.status === 'active')) {
      status.problems.push(mine.length ? 'its Subscription is off: new messages are left to the sweep' : 'no Subscription sends messages to it');
    } else if (mine.filter((s) => s.status === 'active' && s.criteria === criteria).length > 1) {
      status.problems.push('several active Subscriptions send it the same messages: each message runs it more than once (and spends its quota as often)');
    }
  }
  status.triggers.push(bot.cronString ? `cron ${bot.cronString}` : 'no cron');
  if (!bot.cronString) {
    status.problems.push(config.name === 'ooo-reroute' ? 'no cronString: the sweep never runs, and lost events are never repaired' : 'no cronString: it never runs');
  }
  const timeoutSecret = secrets?.find((s) => s.name === 'BOT_TIMEOUT_SECONDS');
  const believed = Number(timeoutSecret?.valueString ?? timeoutSecret?.valueInteger ?? (secrets ? SECRET_DEFAULTS.BOT_TIMEOUT_SECONDS : NaN));
  if (secrets && (bot.timeout ?? 10) < believed) {
    status.problems.push(`timeout ${bot.timeout ?? '10 (server default)'} s is below BOT_TIMEOUT_SECONDS ${believed}: the bot plans for time it does not have`);
  }
  const runs = await medplum.searchResources('AuditEvent', { entity: `Bot/${config.id}`, _sort: '-_lastUpdated', _count: '5' }, { cache: 'no-cache' });
  status.lastRuns = runs.map((e: AuditEvent) => ({ time: e.recorded, outcome: runOutcome(e) }));
  return status;
}

/**
 * Interactions a bot's policy must grant that a policy does not.
 * @param policy - The policy in use.
 * @param needed - The bot's own policy.
 * @returns E.g. `Communication search`.
 */
export function missingRights(policy: AccessPolicy, needed: AccessPolicy): string[] {
  const grants = (type: string): string[] => {
    const entry = policy.resource?.find((r) => r.resourceType === type || r.resourceType === '*');
    return entry ? (entry.interaction ?? ['create', 'read', 'update', 'delete', 'search', 'history']) : [];
  };
  return (needed.resource ?? []).flatMap((r) => (r.interaction ?? []).filter((i) => !grants(r.resourceType).includes(i)).map((i) => `${r.resourceType} ${i}`));
}

function runOutcome(event: AuditEvent): string {
  const base = event.outcome === '0' ? 'ok' : event.outcome === '4' ? 'failed' : `outcome ${event.outcome}`;
  // The bots log what they left for later; say it, so "ok" does not hide deferred work.
  const deferred = /deferred=\{"quota":(\d+),"deadline":(\d+)\}/.exec(event.outcomeDesc ?? '');
  const left = deferred ? Number(deferred[1]) + Number(deferred[2]) : 0;
  const stopped = /stopped early \((quota|deadline)\)/.exec(event.outcomeDesc ?? '');
  return stopped ? `${base}, stopped early (${stopped[1]})` : left ? `${base}, ${left} deferred` : base;
}

/**
 * Formats statuses as a table an admin reads at a glance.
 * @param result - What readStatus returned.
 * @returns The text.
 */
export function formatStatus(result: { bots: BotStatus[]; problems: string[] }): string {
  const yes = (b: boolean): string => (b ? 'yes' : 'NO');
  const table = new Table({
    head: ['bot', 'id', 'exists', 'deployed', 'runtime', 'membership', 'access policy', 'triggers', 'timeout', 'last runs'],
    chars: Object.fromEntries(
      ['top', 'top-mid', 'top-left', 'top-right', 'bottom', 'bottom-mid', 'bottom-left', 'bottom-right', 'left', 'left-mid', 'mid', 'mid-mid', 'right', 'right-mid', 'middle'].map((k) => [k, ''])
    ),
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
  });
  for (const b of result.bots) {
    table.push([
      b.name,
      b.id,
      yes(b.exists),
      yes(b.deployed),
      b.runtime ?? '-',
      yes(b.membership),
      b.accessPolicy,
      b.triggers.join('; ') || '-',
      b.timeout === undefined ? '-' : `${b.timeout} s`,
      b.lastRuns.map((r) => `${r.time?.slice(0, 16)} ${r.outcome}`).join('; ') || 'none yet',
    ]);
  }
  const lines = table.toString().split('\n').map((l) => l.trimEnd());
  const problems = [...result.problems, ...result.bots.flatMap((b) => b.problems.map((p) => `${b.name}: ${p}`))];
  return [...lines, '', problems.length ? `Problems:\n${problems.map((p) => `- ${p}`).join('\n')}` : 'No problems found.'].join('\n');
}
