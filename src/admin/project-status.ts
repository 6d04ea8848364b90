// `npm run status`: is each bot there, deployed, wired, allowed what it needs, and running well?
import { formatHumanName } from '@medplum/core';
import type { MedplumClient } from '@medplum/core';
import type { AccessPolicy, Bot, ProjectSetting, Resource, Subscription } from '@medplum/fhirtypes';
import { obsoleteSecrets, secretProblems } from '../lib/secret-catalogue';
import type { BotConfig } from './project-setup';
import { BOT_WIRING, MANAGED_TAG_SYSTEM, PLACEHOLDER_BOT_ID, sendsMessages, settingsDrift } from './project-setup';
import { parseHourOfDay } from '../lib/business-hours';
import { parseCron } from '../lib/cron';
import { cronSecretProblems } from './settings';
import { assignRuns, describeRun, describeTicks, GRACE_MS, judgeRuns, ticksToRead } from './run-history';
import type { RunSummary, Tick } from './run-history';

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
  lastRuns: RunSummary[];
  /** The last ticks of its cron, by kind, with the run each started. */
  ticks: Tick[];
  problems: string[];
}

/** What status found. */
export interface StatusResult {
  bots: BotStatus[];
  problems: string[];
  /** The Project's secrets, when the client may read them (for the data checks). */
  secrets?: ProjectSetting[];
  /** Worth knowing, not a problem (secrets no longer read). */
  notes?: string[];
}

/**
 * Reads each bot's state from the Project.
 * @param medplum - A client of the Project (a Project admin sees secrets and can check timeouts).
 * @param bots - The bot entries of the config.
 * @param options - `wiring: false` checks only the Project's features and secrets (`status --data`).
 * @param options.wiring - Whether to check the Bots and their wiring.
 * @param options.now - The instant to judge the cron ticks at (default now).
 * @returns One status per bot, plus Project-level problems.
 */
export async function readStatus(medplum: MedplumClient, bots: BotConfig[], options: { wiring?: boolean; now?: number } = {}): Promise<StatusResult> {
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
  problems.push(...secretProblems(secrets ?? []), ...cronSecretProblems(secrets ?? []));
  const notes = obsoleteSecrets(secrets ?? []);
  const ourEndpoints = new Set(bots.map((b) => `Bot/${b.id}`));
  const criteria = new Set(Object.values(BOT_WIRING).flatMap((w) => (w.subscription ? [w.subscription.criteria] : [])));
  if (options.wiring === false) {
    return { bots: [], problems, secrets, notes };
  }
  const subscriptions = await medplum.searchResources('Subscription', { _count: '1000' }, { cache: 'no-cache' });
  for (const sub of subscriptions) {
    if (criteria.has(sub.criteria) && sub.status === 'active' && !ourEndpoints.has(sub.channel?.endpoint ?? '')) {
      problems.push(`Subscription/${sub.id} (${sub.criteria}) sends to ${sub.channel?.endpoint}, which is not one of our Bots`);
    }
  }
  const statuses: BotStatus[] = [];
  for (const config of bots) {
    statuses.push(await botStatus(medplum, config, subscriptions, secrets, options.now ?? Date.now()));
  }
  return { bots: statuses, problems, secrets, notes };
}

async function botStatus(
  medplum: MedplumClient,
  config: BotConfig,
  subscriptions: Subscription[],
  secrets: ProjectSetting[] | undefined,
  now: number
): Promise<BotStatus> {
  const status: BotStatus = { name: config.name, id: config.id, exists: false, deployed: false, membership: false, accessPolicy: 'none', triggers: [], lastRuns: [], ticks: [], problems: [] };
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
    for (const broken of mine.filter((s) => s.status === 'error' || s.error)) {
      status.problems.push(
        `Subscription/${broken.id} is ${broken.status}${broken.error ? ` (${broken.error})` : ''}: newer Medplum servers turn a Subscription off after repeated failures; fix the cause, then npm run setup -- --reset-bot-settings`
      );
    }
    const active = mine.filter((s) => s.status === 'active' && sendsMessages(s));
    if (!active.length) {
      status.problems.push(mine.length ? 'its Subscription is off: new messages are left to the sweep' : 'no Subscription sends messages to it');
    } else if (active.length > 1) {
      status.problems.push(
        `several active Subscriptions send it the same messages: each message runs it more than once (and spends its quota as often): ${active
          .map((s) => `Subscription/${s.id} (${s.criteria === criteria ? 'its criteria' : s.criteria})`)
          .join(', ')}. Fix: npm run setup (it keeps one and turns the others off; --adopt when none is setup's)`
      );
    }
  }
  status.triggers.push(bot.cronString ? `cron ${bot.cronString}` : 'no cron');
  if (!bot.cronString) {
    status.problems.push(config.name === 'ooo-reroute' ? 'no cronString: the sweep never runs, and lost events are never repaired' : 'no cronString: it never runs');
  }
  if (secrets) {
    // What is set against what runs: a cron or timeout setting setup has not applied.
    status.problems.push(...settingsDrift(bot, config.name, secrets));
  }
  // The newest runs (a busy bot's are nearly all runs for messages), then the runs of its cron's
  // last ticks, kind by kind, wherever they are among the others.
  const recent = await medplum.searchResources('AuditEvent', { entity: `Bot/${config.id}`, _sort: '-date', _count: '50' }, { cache: 'no-cache' });
  status.lastRuns = recent.map(describeRun).sort((a, b) => (b.time ?? '').localeCompare(a.time ?? ''));
  const cron = parseCron(bot.cronString);
  if (bot.cronString && !cron) {
    status.problems.push(
      `its cronString "${bot.cronString}" is refused by the server's cron check: the Bot never runs on schedule. Fix: npm run settings -- set ${wiring?.cronSecret ?? 'its cron secret'}=<5-field cron>, then npm run setup -- --reset-bot-settings`
    );
  }
  const fullHour = hourSecret(secrets, 'STALE_FULL_RECONCILE_HOUR');
  const ticks = cron
    ? ticksToRead(cron, { bot: config.name, timeoutSeconds: bot.timeout ?? 10, now, botWritten: Date.parse(bot.meta?.lastUpdated ?? '') || undefined, fullHour })
    : [];
  status.ticks = assignRuns(ticks, await runsInWindows(medplum, config.id, ticks));
  status.problems.push(...judgeRuns(status.ticks, status.lastRuns, bot.cronString));
  if (wiring?.subscription) {
    const silent = await silentSubscription(medplum, config.id, subscriptions, wiring.subscription.criteria, bot.timeout ?? 10, now);
    if (silent) {
      status.problems.push(silent);
    }
  }
  return status;
}

function hourSecret(secrets: ProjectSetting[] | undefined, name: string): number | undefined {
  const setting = secrets?.find((s) => s.name === name);
  const raw = setting?.valueString ?? setting?.valueInteger?.toString();
  const parsed = raw === undefined ? undefined : parseHourOfDay(raw);
  return parsed && 'hour' in parsed ? parsed.hour : undefined;
}

/**
 * The runs recorded in the windows of a bot's cron ticks: one search per window (windows that
 * overlap read together), the oldest first, so a run for a tick is found however many runs for
 * messages came after it.
 * @param medplum - The client.
 * @param botId - The Bot.
 * @param ticks - The ticks.
 * @returns The runs, each once.
 */
async function runsInWindows(medplum: MedplumClient, botId: string, ticks: Tick[]): Promise<RunSummary[]> {
  const windows: { from: number; to: number }[] = [];
  for (const t of [...ticks].sort((a, b) => a.from - b.from)) {
    const last = windows.at(-1);
    if (last && t.from <= last.to) {
      last.to = Math.max(last.to, t.to);
    } else {
      windows.push({ from: t.from, to: t.to });
    }
  }
  const seen = new Map<string, RunSummary>();
  for (const w of windows) {
    const events = await medplum.searchResources(
      'AuditEvent',
      new URLSearchParams([
        ['entity', `Bot/${botId}`],
        ['date', `ge${new Date(w.from).toISOString()}`],
        ['date', `le${new Date(w.to).toISOString()}`],
        ['_sort', 'date'],
        ['_count', '1000'],
      ]),
      { cache: 'no-cache' }
    );
    events.forEach((e) => seen.set(e.id, describeRun(e)));
  }
  return [...seen.values()];
}

/**
 * Whether the Subscription delivers: the last thread messages it should have sent to the bot
 * (created while it was active, old enough for their run to be recorded) each have a run.
 * @param medplum - The client.
 * @param botId - The Bot.
 * @param subscriptions - The Project's Subscriptions.
 * @param criteria - The criteria the bot's Subscription has.
 * @param timeoutSeconds - The Bot's timeout.
 * @param now - Epoch milliseconds.
 * @returns A problem line, or undefined.
 */
async function silentSubscription(
  medplum: MedplumClient,
  botId: string,
  subscriptions: Subscription[],
  criteria: string,
  timeoutSeconds: number,
  now: number
): Promise<string | undefined> {
  const active = subscriptions.filter((s) => s.channel?.endpoint === `Bot/${botId}` && s.status === 'active');
  const since = Math.min(...active.map((s) => Date.parse(s.meta?.lastUpdated ?? '') || Infinity));
  if (!active.length || !Number.isFinite(since)) {
    return undefined;
  }
  const until = now - timeoutSeconds * 1000 - GRACE_MS;
  const [type, query] = criteria.split('?');
  const messages = await medplum.searchResources(
    type as 'Communication',
    new URLSearchParams([...new URLSearchParams(query), ['_sort', '-_lastUpdated'], ['_count', '20']]),
    { cache: 'no-cache' }
  );
  const time = (m: { sent?: string; meta?: { lastUpdated?: string } }): number => Date.parse(m.sent ?? m.meta?.lastUpdated ?? '');
  const due = messages
    .filter((m) => time(m) > since && time(m) <= until && Date.parse(m.meta?.lastUpdated ?? '') > since)
    .sort((a, b) => time(b) - time(a))
    .slice(0, 3);
  if (due.length < 2) {
    return undefined;
  }
  const runs = await medplum.searchResources('AuditEvent', { entity: due.map((m) => `Communication/${m.id}`).join(','), _count: '100' }, { cache: 'no-cache' });
  const ran = runs.some((r) => r.entity?.some((e) => e.what?.reference === `Bot/${botId}`));
  if (ran) {
    return undefined;
  }
  return (
    `its last ${due.length} thread messages (${due.map((m) => `Communication/${m.id}`).join(', ')}) did not run it although its Subscription is active: ` +
    `the server does not deliver them (a Subscription whose criteria or channel were edited, or the server's subscription worker is down); new messages are left to the sweep. ` +
    `Fix: npm run setup (it puts the Subscription back as the bot needs it), then send a test message and check its run here`
  );
}

/**
 * The names of owners (providers, organizations, care teams), for an admin's terminal: read in
 * batches of 100. Never message text.
 * @param medplum - The client.
 * @param owners - References.
 * @returns Reference -> name, for those that have one.
 */
export async function ownerNames(medplum: MedplumClient, owners: string[]): Promise<Map<string, string>> {
  const unique = [...new Set(owners)];
  const names = new Map<string, string>();
  for (let i = 0; i < unique.length; i += 100) {
    const chunk = unique.slice(i, i + 100);
    const result = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: chunk.map((url) => ({ request: { method: 'GET', url } })) });
    result.entry?.forEach((entry, j) => {
      const name = entry.resource ? nameOf(entry.resource) : undefined;
      if (name) {
        names.set(chunk[j], name);
      }
    });
  }
  return names;
}

function nameOf(resource: Resource): string | undefined {
  switch (resource.resourceType) {
    case 'Practitioner':
    case 'Patient':
    case 'RelatedPerson':
      return resource.name?.[0] ? formatHumanName(resource.name[0]) || undefined : undefined;
    case 'PractitionerRole':
      return resource.practitioner?.display ?? resource.code?.[0]?.text ?? resource.code?.[0]?.coding?.[0]?.display;
    case 'Organization':
    case 'CareTeam':
    case 'HealthcareService':
    case 'Group':
      return resource.name;
    default:
      return undefined;
  }
}

/**
 * Interactions a bot's policy must grant that a policy does not.
 * @param policy - The policy in use.
 * @param needed - The bot's own policy.
 * @returns E.g. `Communication search`.
 */
export function missingRights(policy: AccessPolicy, needed: AccessPolicy): string[] {
  // Every entry for the type (or `*`) counts, as the server checks them all; a `readonly` one grants no writes.
  const grants = (type: string): string[] =>
    (policy.resource ?? [])
      .filter((r) => r.resourceType === type || r.resourceType === '*')
      .flatMap((r) => (r.interaction ?? ['create', 'read', 'vread', 'update', 'delete', 'search', 'history']).filter((i) => !r.readonly || ['read', 'vread', 'search', 'history'].includes(i)));
  return (needed.resource ?? []).flatMap((r) => (r.interaction ?? []).filter((i) => !grants(r.resourceType).includes(i)).map((i) => `${r.resourceType} ${i}`));
}

/** Status lines fit this many columns (a terminal, a CI log). */
export const WIDTH = 100;

/**
 * Formats statuses for an admin: a block per bot, lines of at most 100 columns; ids in full and
 * every logged line of the last runs under --verbose.
 * @param result - What readStatus returned.
 * @param options - `verbose`: full ids and run logs; `data`: the data-check lines.
 * @param options.verbose - Full details.
 * @param options.data - Data problems found (owners whose hours cannot be judged).
 * @returns The text.
 */
export function formatStatus(result: StatusResult, options: { verbose?: boolean; data?: string[] } = {}): string {
  const short = (id: string): string => (options.verbose || id.length <= 13 ? id : `${id.slice(0, 8)}…`);
  const lines: string[] = [];
  for (const b of result.bots) {
    const state = !b.exists
      ? 'not found'
      : [
          b.deployed ? 'deployed' : 'NOT DEPLOYED',
          b.runtime,
          b.membership ? 'membership' : 'NO MEMBERSHIP',
          `policy ${b.accessPolicy === 'ours' ? 'ours' : b.accessPolicy === 'none' ? 'NONE' : b.accessPolicy.replace(/\/(.+)$/, (_m, id: string) => `/${short(id)}`)}`,
          `timeout ${b.timeout ?? '10 (default)'} s`,
        ].join(', ');
    lines.push(`${b.name}  Bot/${short(b.id)}`, `  state      ${state}`);
    if (b.triggers.length) {
      lines.push(`  triggers   ${b.triggers.map((t) => t.replace(/\/([0-9a-f-]{13,})/, (_m, id: string) => `/${short(id)}`)).join('; ')}`);
    }
    const shown = options.verbose ? b.lastRuns : b.lastRuns.slice(0, 5);
    shown.forEach((r, i) => {
      const what = [r.kind === 'unknown' ? '' : `${r.kind}: ${r.did}`, r.leftWork].filter(Boolean).join('; ');
      lines.push(`  ${i ? '          ' : 'last runs '} ${r.time?.slice(0, 16).replace('T', ' ') ?? '?'}  ${r.outcome}${what ? `  ${what}` : ''}`);
      if (options.verbose) {
        r.log.split('\n').filter(Boolean).forEach((l) => lines.push(`      ${l}`));
      }
    });
    if (!shown.length && b.exists) {
      lines.push('  last runs  none yet');
    }
    describeTicks(b.ticks).forEach((l, i) => lines.push(`  ${i ? '          ' : 'on cron   '} ${l}`));
  }
  const problems = [...result.problems, ...result.bots.flatMap((b) => b.problems.map((p) => `${b.name}: ${p}`)), ...(options.data ?? [])];
  (result.notes ?? []).forEach((n) => lines.push(...wrap(`Note: ${n}`, '  ')));
  lines.push('', problems.length ? 'Problems:' : 'No problems found.');
  problems.forEach((p) => lines.push(...wrap(`- ${p}`, '  ')));
  return lines.map((l) => (options.verbose || l.length <= WIDTH ? l : `${l.slice(0, WIDTH - 1)}…`)).join('\n');
}

/**
 * Wraps a line at word boundaries to the status width.
 * @param text - The line.
 * @param indent - What continuation lines start with.
 * @returns Lines of at most WIDTH columns (a single longer word stays whole).
 */
export function wrap(text: string, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > WIDTH) {
      out.push(line);
      line = indent + word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...out, line];
}
