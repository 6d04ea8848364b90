// `npm run setup`: makes a Project ready for the bots, idempotently, on a Project others share.
//
// - Everything setup creates carries the tag `urn:medplum-messaging-bots|<bot name>` (meta.tag), and
//   setup only ever changes resources with that tag. A resource of ours made by hand, or by an older
//   version, is named in the plan and left alone unless `--adopt` marks it ours.
// - A Bot's cronString and timeout set by hand are kept: setup records on the Bot what it applied
//   last, and changes a value only when it is unset, when its secret changed since, or with
//   `--reset-bot-settings`. A Subscription turned off by hand stays off (a deliberate pause).
// - Of the Subscriptions that send thread messages to the OOO Bot (tagged or not, whatever their
//   criteria), one is kept and the others are turned off, each named: every one would run the bot
//   once more per message.
// - Secrets are Project-wide (other integrations keep theirs there): setup adds defaults only where a
//   setting never existed (the Bots' applied-settings extension records the ones it added, so one an
//   admin unsets stays unset), never changes one, and never prints a value.
//
// Reads what the Project has, plans with a pure function (`planSetup`), applies the plan.
import type { MedplumClient, WithId } from '@medplum/core';
import type { AccessPolicy, Bot, Coding, Extension, ProjectMembership, ProjectSetting, Resource, Subscription } from '@medplum/fhirtypes';
import { parseBusinessHours } from '../lib/business-hours';
import { describeRule, parseResponseRules } from '../lib/response-rules';
import { secretSpec } from '../lib/secret-catalogue';
import { checkCron } from '../lib/cron';
import { updateSecrets } from './project-secrets';
import oooAccessPolicy from './fhir/access-policy-ooo-reroute.json';
import staleAccessPolicy from './fhir/access-policy-stale-thread-reminders.json';
import oooSubscription from './fhir/subscription-ooo-reroute.json';

/** A bot entry of medplum.config.json. */
export interface BotConfig {
  name: string;
  id: string;
  source: string;
  dist: string;
}

/** The Bot ids in a fresh clone: replaced by setup, refused by deploy. */
export const PLACEHOLDER_BOT_ID = '00000000-0000-0000-0000-000000000000';
/** The tag system of what setup manages; the code is the bot's name. */
export const MANAGED_TAG_SYSTEM = 'urn:medplum-messaging-bots';
/** Extension on a Bot: the cronString and timeout setup applied last. */
export const APPLIED_SETTINGS_URL = 'urn:medplum-messaging-bots:setup-applied';
/** The Bot runtimes Medplum knows. */
export const RUNTIMES = ['vmcontext', 'awslambda'] as const;

/** Secrets setup writes when absent, with their defaults; the others are optional and off when absent. */
export const SECRET_DEFAULTS: Record<string, string> = {
  OOO_COVERAGE: '{}',
  OOO_SWEEP_CRON: '*/15 * * * *',
  STALE_AFTER_HOURS: '72',
  ESCALATE_AFTER_HOURS: '24',
  STALE_THREAD_CRON: '0 * * * *',
  BOT_TIMEOUT_SECONDS: '60',
};

/** What each bot needs besides its code. */
export const BOT_WIRING: Record<string, { accessPolicy: AccessPolicy; subscription?: Subscription; cronSecret: string }> = {
  'ooo-reroute': { accessPolicy: oooAccessPolicy as AccessPolicy, subscription: oooSubscription as Subscription, cronSecret: 'OOO_SWEEP_CRON' },
  'stale-thread-reminders': { accessPolicy: staleAccessPolicy as AccessPolicy, cronSecret: 'STALE_THREAD_CRON' },
};

/** Options of a setup run. */
export interface SetupOptions {
  /** Take over existing Bots that setup did not create: their Subscription, and setup's AccessPolicy on their membership. */
  adopt?: boolean;
  /** Apply the secrets' cron and timeout even over values set by hand; turn a paused Subscription on. */
  resetBotSettings?: boolean;
  /** Runtime for the Bots; undefined leaves the server's default (or the Bot's current runtime). */
  runtime?: (typeof RUNTIMES)[number];
}

/** How a bot of the config was found in the Project. */
export interface FoundBot {
  bot?: WithId<Bot>;
  /** Ours (tagged), or found by its exact name without our tag. */
  managed: boolean;
  /** Bots of that exact name, when the config has no usable id. */
  sameName: WithId<Bot>[];
  membership?: WithId<ProjectMembership>;
  /** The AccessPolicy tagged for this bot. */
  policy?: WithId<AccessPolicy>;
  /** The AccessPolicy the membership uses, when it is not ours. */
  otherPolicy?: WithId<AccessPolicy>;
  /** Subscriptions sending to this Bot. */
  subscriptions: WithId<Subscription>[];
}

/** What the Project has now. */
export interface ProjectState {
  projectId: string;
  features?: string[];
  secrets: ProjectSetting[];
  bots: Record<string, FoundBot>;
}

/** One change setup makes, or a note on what it keeps. */
export interface SetupStep {
  action:
    | 'create-bot'
    | 'adopt-bot'
    | 'update-bot'
    | 'create-policy'
    | 'update-policy'
    | 'attach-policy'
    | 'create-subscription'
    | 'update-subscription'
    | 'set-secrets'
    | 'keep';
  bot?: string;
  why: string;
  /** The resource to write (absent for keep; names only for secrets). */
  resource?: Resource;
  /** Secret names added (set-secrets). */
  secretNames?: string[];
  /** Needs the id of a Bot this run creates first: shown in a dry run, applied in the next pass. */
  afterBotCreated?: boolean;
}

/** The plan, and why setup cannot go on when it cannot. */
export interface SetupPlan {
  steps: SetupStep[];
  /** Problems that stop setup before any write (e.g. Bots to adopt without --adopt). */
  blockers: string[];
}

/**
 * The tag setup puts on what it creates for a bot.
 * @param bot - The bot name.
 * @returns The tag.
 */
export function managedTag(bot: string): Coding {
  return { system: MANAGED_TAG_SYSTEM, code: bot };
}

function isManaged(resource: Resource | undefined, bot: string): boolean {
  return !!resource?.meta?.tag?.some((t) => t.system === MANAGED_TAG_SYSTEM && t.code === bot);
}

function withTag<T extends Resource>(resource: T, bot: string): T {
  const tags = (resource.meta?.tag ?? []).filter((t) => !(t.system === MANAGED_TAG_SYSTEM && t.code === bot));
  return { ...resource, meta: { ...resource.meta, tag: [...tags, managedTag(bot)] } };
}

/**
 * Reads what setup needs to know about a Project.
 * @param medplum - A client logged in as a Project admin.
 * @param projectId - The Project id.
 * @param bots - The bot entries of medplum.config.json.
 * @returns The state.
 */
export async function readProjectState(medplum: MedplumClient, projectId: string, bots: BotConfig[]): Promise<ProjectState> {
  const admin = await medplum.get<{ project: { secret?: ProjectSetting[]; features?: string[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' });
  const state: ProjectState = {
    projectId,
    features: medplum.getProject()?.features ?? admin.project.features,
    secrets: admin.project.secret ?? [],
    bots: {},
  };
  for (const config of bots) {
    const found: FoundBot = { managed: false, sameName: [], subscriptions: [] };
    const tag = `${MANAGED_TAG_SYSTEM}|${config.name}`;
    if (config.id && config.id !== PLACEHOLDER_BOT_ID) {
      found.bot = await medplum.readResource('Bot', config.id).catch(() => undefined);
    }
    if (!found.bot) {
      // Exact names only: a plain `name` search matches prefixes ("ooo-reroute" finds "ooo-reroute-old").
      found.sameName = (await medplum.searchResources('Bot', { 'name:exact': config.name }, { cache: 'no-cache' })).filter((b) => b.name === config.name);
      const tagged = found.sameName.filter((b) => isManaged(b, config.name));
      found.bot = tagged.length === 1 ? tagged[0] : undefined;
    }
    found.managed = isManaged(found.bot, config.name);
    const policies = await medplum.searchResources('AccessPolicy', { _tag: tag }, { cache: 'no-cache' });
    found.policy = policies[0];
    // The Bot to wire: ours, or the one Bot of that name --adopt would take (its Subscription and
    // membership must be known too, or adopting would add a second Subscription next to its own).
    const bot = found.bot ?? (found.sameName.length === 1 ? found.sameName[0] : undefined);
    if (bot) {
      found.membership = await medplum.searchOne('ProjectMembership', { profile: `Bot/${bot.id}` }, { cache: 'no-cache' });
      const inUse = found.membership?.accessPolicy?.reference;
      if (inUse && inUse !== `AccessPolicy/${found.policy?.id}`) {
        found.otherPolicy = await medplum.readReference<AccessPolicy>({ reference: inUse }).catch(() => undefined);
      }
      found.subscriptions = await medplum.searchResources('Subscription', { url: `Bot/${bot.id}`, _count: '100' }, { cache: 'no-cache' });
    }
    state.bots[config.name] = found;
  }
  return state;
}

/**
 * The pure plan: what to create or update so the Project matches what the bots need, and what
 * setup keeps because someone set it by hand.
 * @param state - What the Project has.
 * @param bots - The bot entries of medplum.config.json.
 * @param options - Adopt, reset, runtime.
 * @returns The steps, in the order to apply them, and blockers.
 */
export function planSetup(state: ProjectState, bots: BotConfig[], options: SetupOptions = {}): SetupPlan {
  const steps: SetupStep[] = [];
  const blockers: string[] = [];
  const secrets = new Map(state.secrets.map((s) => [s.name, s]));
  // Defaults are added only where a setting never existed: a setting setup added before and that is
  // absent now was removed by an admin (`npm run settings -- unset`), and stays removed.
  const addedBefore = defaultsAddedBefore(state, bots);
  const missing = Object.keys(SECRET_DEFAULTS).filter((name) => !secrets.has(name));
  const toAdd = missing.filter((name) => !addedBefore.has(name));
  const removed = missing.filter((name) => addedBefore.has(name));
  if (toAdd.length) {
    steps.push({ action: 'set-secrets', why: `secrets the bots read are absent; defaults added: ${toAdd.join(', ')}`, secretNames: toAdd });
  }
  if (removed.length) {
    steps.push({
      action: 'keep',
      why: `${removed.join(', ')} ${removed.length > 1 ? 'were' : 'was'} removed after setup added ${removed.length > 1 ? 'them' : 'it'}: kept unset (${removed
        .map((n) => `${n}: ${secretSpec(n)?.whenAbsent}`)
        .join('; ')}); npm run settings -- set NAME=VALUE sets one again`,
    });
  }
  const record = [...new Set([...addedBefore, ...toAdd])].sort();
  const secret = (name: string): string => {
    const s = secrets.get(name);
    return String(s?.valueString ?? s?.valueInteger ?? s?.valueDecimal ?? SECRET_DEFAULTS[name]);
  };

  for (const config of bots) {
    const wiring = BOT_WIRING[config.name];
    if (!wiring) {
      continue;
    }
    const cron = checkCron(secret(wiring.cronSecret));
    if ('error' in cron) {
      // The server would store it and never run the Bot on schedule, saying nothing.
      blockers.push(`secret ${wiring.cronSecret}: ${cron.error}. Fix: npm run settings -- set ${wiring.cronSecret}=<5-field cron>`);
      continue;
    }
    const found = state.bots[config.name] ?? { managed: false, sameName: [], subscriptions: [] };
    let bot = found.bot;
    let managed = found.managed;
    if (!bot && found.sameName.length) {
      const ids = found.sameName.map((b) => `Bot/${b.id}`).join(', ');
      if (found.sameName.length > 1) {
        blockers.push(`several Bots are named "${config.name}" (${ids}): put the right id in the config file`);
        continue;
      }
      if (!options.adopt) {
        blockers.push(`"${config.name}": the Project has ${ids}, which setup did not create: run again with --adopt to use it, or put its id in the config file`);
        continue;
      }
      bot = found.sameName[0];
    }
    if (bot && !managed) {
      if (!options.adopt) {
        steps.push({ action: 'keep', bot: config.name, why: `Bot/${bot.id} was not created by setup: its settings, policy and Subscription are left as they are (--adopt to manage them)` });
        continue;
      }
      steps.push({ action: 'adopt-bot', bot: config.name, why: `Bot/${bot.id} is taken over (--adopt): tagged as managed by setup`, resource: withTag(bot, config.name) });
      bot = withTag(bot, config.name);
      managed = true;
    }

    // AccessPolicy first: a Bot created through the admin API gets it on its membership at once.
    const desiredPolicy = withTag({ ...wiring.accessPolicy }, config.name);
    if (!found.policy) {
      steps.push({ action: 'create-policy', bot: config.name, why: `AccessPolicy "${wiring.accessPolicy.name}" limits the bot to what its code uses`, resource: desiredPolicy });
    } else if (!sameContent(found.policy, { ...desiredPolicy, id: found.policy.id })) {
      steps.push({
        action: 'update-policy',
        bot: config.name,
        why: `AccessPolicy/${found.policy.id} (ours) differs from what the bot needs`,
        resource: { ...desiredPolicy, id: found.policy.id, meta: { ...found.policy.meta, tag: desiredPolicy.meta?.tag } },
      });
    }

    const settings = botSettings(bot, cron.cron, Number(secret('BOT_TIMEOUT_SECONDS')), options, wiring.cronSecret, record);
    if (!bot) {
      steps.push({
        action: 'create-bot',
        bot: config.name,
        why: 'the Bot does not exist; created through the Project admin API so that it has a ProjectMembership (Subscriptions to a Bot without one fail)',
        resource: withTag({ resourceType: 'Bot', name: config.name, ...(options.runtime ? { runtimeVersion: options.runtime } : {}), ...settings.fields }, config.name),
      });
    } else {
      settings.kept.forEach((why) => steps.push({ action: 'keep', bot: config.name, why }));
      const runtimeChange = options.runtime && bot.runtimeVersion !== options.runtime ? { runtimeVersion: options.runtime } : {};
      if (Object.keys(settings.changes).length || Object.keys(runtimeChange).length) {
        const what = [...Object.entries(settings.changes).map(([k, why]) => `${k} (${why})`), ...(options.runtime && runtimeChange.runtimeVersion ? [`runtimeVersion ${options.runtime} (--runtime)`] : [])];
        steps.push({ action: 'update-bot', bot: config.name, why: `Bot/${bot.id}: ${what.join('; ')}`, resource: { ...bot, ...settings.fields, ...runtimeChange } });
      }
    }

    if (bot && found.membership) {
      const current = found.membership.accessPolicy?.reference;
      const ours = !!found.policy && current === `AccessPolicy/${found.policy.id}`;
      const attach = (why: string): void => {
        steps.push({
          action: 'attach-policy',
          bot: config.name,
          why,
          resource: { ...found.membership, accessPolicy: found.policy ? { reference: `AccessPolicy/${found.policy.id}` } : undefined } as ProjectMembership,
          afterBotCreated: !found.policy,
        });
      };
      if (!current) {
        attach(`the Bot's ProjectMembership has no AccessPolicy (it runs with the Project's full rights)`);
      } else if (!ours && options.adopt) {
        attach(`the Bot's ProjectMembership uses ${current}, which setup did not create; replaced by ours (--adopt)`);
      } else if (!ours) {
        steps.push({
          action: 'keep',
          bot: config.name,
          why: `its ProjectMembership uses ${current}, which setup did not create; kept (\`npm run status\` checks it grants what the bot needs)`,
        });
      }
    }

    if (wiring.subscription) {
      planSubscription(steps, config.name, wiring.subscription, bot, found.subscriptions, options);
    }
  }
  return { steps, blockers };
}

/**
 * The setting defaults setup added to this Project before, as recorded on the Bots it manages. A
 * Project set up by a version that kept no record had every default added by it.
 * @param state - What the Project has.
 * @param bots - The bot entries of the config.
 * @returns The secret names.
 */
function defaultsAddedBefore(state: ProjectState, bots: BotConfig[]): Set<string> {
  const managed = bots.map((b) => state.bots[b.name]).filter((f) => f?.managed && f.bot);
  const records = managed.map((f) => appliedSettings(f?.bot).secretDefaults);
  if (managed.some((f) => f?.bot?.extension?.some((e) => e.url === APPLIED_SETTINGS_URL)) && records.every((r) => r === undefined)) {
    return new Set(Object.keys(SECRET_DEFAULTS));
  }
  return new Set(records.flatMap((r) => r ?? []));
}

/**
 * The cronString and timeout a Bot should have, keeping values set by hand; and the record of the
 * setting defaults setup added.
 * @returns Fields to write, why each changes, and notes on what is kept.
 */
function botSettings(
  bot: Bot | undefined,
  cron: string,
  timeout: number,
  options: SetupOptions,
  cronSecret: string,
  record: string[] = []
): { fields: Partial<Bot>; changes: Record<string, string>; kept: string[] } {
  const desired = { cronString: cron, timeout };
  const source = { cronString: cronSecret, timeout: 'BOT_TIMEOUT_SECONDS' };
  const applied = appliedSettings(bot);
  const fields: Partial<Bot> = {};
  const changes: Record<string, string> = {};
  const kept: string[] = [];
  for (const key of ['cronString', 'timeout'] as const) {
    const current = bot?.[key];
    const want = desired[key];
    if (current === want) {
      continue;
    }
    const secretChanged = applied[key] !== undefined && applied[key] !== want;
    if (!bot || options.resetBotSettings || secretChanged || (current === undefined && applied[key] === undefined)) {
      (fields as Record<string, unknown>)[key] = want;
      changes[key] = !bot ? 'new Bot' : options.resetBotSettings ? '--reset-bot-settings' : secretChanged ? `${source[key]} changed since the last setup` : 'not set';
    } else {
      kept.push(
        `Bot/${bot.id} ${key} ${current === undefined ? 'unset' : JSON.stringify(current)} was set by hand: kept (${source[key]} says ${JSON.stringify(want)}; change the secret or pass --reset-bot-settings to apply it)`
      );
    }
  }
  const recordChanged = record.join(',') !== (applied.secretDefaults ?? []).join(',');
  if (Object.keys(fields).length || recordChanged) {
    if (!Object.keys(fields).length) {
      changes.record = 'records the setting defaults setup added, so that one an admin removes stays removed';
    }
    fields.extension = [
      ...(bot?.extension ?? []).filter((e) => e.url !== APPLIED_SETTINGS_URL),
      appliedExtension({
        cronString: fields.cronString ?? applied.cronString ?? (Object.keys(fields).length ? bot?.cronString : undefined),
        timeout: fields.timeout ?? applied.timeout ?? (Object.keys(fields).length ? bot?.timeout : undefined),
        secretDefaults: record,
      }),
    ];
  }
  return { fields, changes, kept };
}

function appliedSettings(bot: Bot | undefined): { cronString?: string; timeout?: number; secretDefaults?: string[] } {
  const ext = bot?.extension?.find((e) => e.url === APPLIED_SETTINGS_URL);
  const defaults = ext?.extension?.find((e) => e.url === 'secretDefaults')?.valueString;
  return {
    cronString: ext?.extension?.find((e) => e.url === 'cronString')?.valueString,
    timeout: ext?.extension?.find((e) => e.url === 'timeout')?.valueInteger,
    secretDefaults: defaults === undefined ? undefined : defaults.split(',').filter(Boolean),
  };
}

function appliedExtension(values: { cronString?: string; timeout?: number; secretDefaults?: string[] }): Extension {
  return {
    url: APPLIED_SETTINGS_URL,
    extension: [
      ...(values.cronString !== undefined ? [{ url: 'cronString', valueString: values.cronString }] : []),
      ...(values.timeout !== undefined ? [{ url: 'timeout', valueInteger: values.timeout }] : []),
      ...(values.secretDefaults?.length ? [{ url: 'secretDefaults', valueString: values.secretDefaults.join(',') }] : []),
    ],
  };
}

/**
 * Where a Bot's cronString or timeout differs from its setting (what setup would apply), and the fix.
 * @param bot - The Bot.
 * @param name - The bot's name in the config.
 * @param secrets - The Project's secrets.
 * @returns Problem lines (none for a bot setup does not wire).
 */
export function settingsDrift(bot: Bot, name: string, secrets: ProjectSetting[]): string[] {
  const wiring = BOT_WIRING[name];
  if (!wiring) {
    return [];
  }
  const value = (n: string): string | undefined => {
    const s = secrets.find((x) => x.name === n);
    return s === undefined ? undefined : String(s.valueString ?? s.valueInteger ?? s.valueDecimal ?? '');
  };
  const rawCron = value(wiring.cronSecret) ?? SECRET_DEFAULTS[wiring.cronSecret];
  const checked = checkCron(rawCron);
  const cron = 'cron' in checked ? checked.cron : rawCron;
  const timeout = Number(value('BOT_TIMEOUT_SECONDS') ?? SECRET_DEFAULTS.BOT_TIMEOUT_SECONDS);
  const plain = botSettings(bot, cron, timeout, {}, wiring.cronSecret, appliedSettings(bot).secretDefaults);
  const lines: string[] = [];
  const what = {
    cronString: { secret: wiring.cronSecret, want: cron, runs: bot.cronString === undefined ? 'no cron' : `cron ${bot.cronString}` },
    timeout: { secret: 'BOT_TIMEOUT_SECONDS', want: String(timeout), runs: `timeout ${bot.timeout ?? '10 (server default)'} s` },
  };
  for (const key of ['cronString', 'timeout'] as const) {
    const current = bot[key];
    const want = key === 'cronString' ? cron : timeout;
    if (current === want || (key === 'timeout' && !Number.isFinite(timeout))) {
      continue;
    }
    const w = what[key];
    const setBy = value(w.secret) === undefined ? `${w.secret} is unset (setup applies ${w.want})` : `${w.secret} is ${w.want}`;
    const below = key === 'timeout' && ((current as number | undefined) ?? 10) < timeout;
    const fix = plain.changes[key]
      ? 'Fix: npm run setup'
      : `The Bot's value was set by hand and setup keeps it. Fix: npm run setup -- --reset-bot-settings applies the setting, or npm run settings -- set ${w.secret}=<the Bot's value> keeps the Bot's`;
    lines.push(
      below
        ? `timeout ${current ?? '10 (server default)'} s is below BOT_TIMEOUT_SECONDS ${timeout}: the bot plans for time it does not have (the setting is not applied). ${fix}`
        : `it runs with ${w.runs} while ${setBy}: the setting is not applied. ${fix}`
    );
  }
  return lines;
}

/**
 * Whether a Subscription sends thread messages (Communications) to a bot, whatever its criteria now.
 * @param subscription - A Subscription whose endpoint is the Bot.
 * @returns True for a Communication criteria.
 */
export function sendsMessages(subscription: Subscription): boolean {
  return (subscription.criteria ?? '').split('?')[0] === 'Communication';
}

function planSubscription(
  steps: SetupStep[],
  name: string,
  template: Subscription,
  bot: WithId<Bot> | undefined,
  subscriptions: WithId<Subscription>[],
  options: SetupOptions
): void {
  const endpoint = bot ? `Bot/${bot.id}` : `Bot/<id of ${name}>`;
  const desired = withTag<Subscription>({ ...template, channel: { ...template.channel, endpoint } }, name);
  // Every Subscription that sends thread messages to the Bot, tagged or not, whatever its criteria
  // (an older setup's, edited by hand, or a second one of ours): one is kept, the others are turned
  // off, or each message would run the bot once per Subscription. The one kept: an active one
  // first, then ours, then one with the bot's criteria.
  const rank = (s: Subscription): number => (s.status === 'active' ? 0 : 4) + (isManaged(s, name) ? 0 : 2) + (s.criteria === template.criteria ? 0 : 1);
  const candidates = subscriptions.filter(sendsMessages).sort((a, b) => rank(a) - rank(b));
  const [kept, ...others] = candidates;
  if (!kept) {
    steps.push({ action: 'create-subscription', bot: name, why: `no Subscription sends new thread messages to ${name}: one on ${template.criteria} (create only)`, resource: desired, afterBotCreated: !bot });
    return;
  }
  for (const extra of others.filter((s) => s.status !== 'off')) {
    steps.push({
      action: 'update-subscription',
      bot: name,
      why: isManaged(extra, name)
        ? `Subscription/${extra.id} is a second one of setup's: turned off (each message would run the bot twice); Subscription/${kept.id} is kept`
        : `Subscription/${extra.id} (${extra.criteria}, not created by setup) also sends thread messages to the bot: turned off (each message would run the bot twice); Subscription/${kept.id} is kept`,
      resource: { ...extra, status: 'off' },
    });
  }
  if (!isManaged(kept, name) && !options.adopt) {
    steps.push({
      action: 'keep',
      bot: name,
      why: `Subscription/${kept.id} sends new messages to the bot but setup did not create it: left as is (--adopt to manage it)`,
    });
    return;
  }
  const paused = kept.status === 'off' && !options.resetBotSettings;
  const target: Subscription = { ...desired, id: kept.id, meta: { ...kept.meta, tag: desired.meta?.tag }, status: paused ? 'off' : desired.status };
  if (paused) {
    steps.push({ action: 'keep', bot: name, why: `Subscription/${kept.id} is off (paused by hand?): kept off, the sweep still runs; --reset-bot-settings turns it on` });
  }
  if (!sameContent(kept, target)) {
    // Each difference in words: a paused Subscription turned back on is not a changed channel.
    const what = [
      ...(!isManaged(kept, name) ? ['is taken over (--adopt)'] : []),
      ...(kept.criteria !== target.criteria ? [`criteria ${kept.criteria} becomes ${template.criteria}`] : []),
      ...(kept.status !== target.status ? [`was ${kept.status}${kept.status === 'off' ? ' (paused by hand?)' : ''}: turned ${target.status === 'active' ? 'back on' : target.status} (--reset-bot-settings)`] : []),
      ...(!sameContent({ ...kept, criteria: target.criteria, status: target.status, meta: target.meta }, target) ? ['differs (channel or interaction filter)'] : []),
    ];
    steps.push({ action: 'update-subscription', bot: name, why: `Subscription/${kept.id} ${what.join('; ')}`, resource: target });
  }
}

function sameContent(a: Resource, b: Resource): boolean {
  const strip = (r: Resource): string =>
    JSON.stringify(r, (key, value) => (key === 'meta' ? (value as Resource['meta'])?.tag?.map((t: Coding) => `${t.system}|${t.code}`).sort() : value));
  return strip(a) === strip(b);
}

/**
 * The secrets that hold rules the bots parse, checked the way the bots will read them, for the plan.
 * @param secrets - The Project's secrets.
 * @returns One line per secret: its parsed content, or what is wrong (never the value itself).
 */
export function checkRuleSecrets(secrets: ProjectSetting[]): string[] {
  const value = (name: string): string | undefined => secrets.find((s) => s.name === name)?.valueString;
  const lines: string[] = [];
  const escalate = Number(value('ESCALATE_AFTER_HOURS') ?? SECRET_DEFAULTS.ESCALATE_AFTER_HOURS);
  const parse = <R extends object>(name: string, parser: (v: unknown) => R | { error: string }): R | undefined => {
    const raw = value(name);
    if (raw === undefined) {
      return undefined;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const result = parser(json);
    return 'error' in result ? undefined : (result as R); // the problem itself is reported by secretProblems
  };
  const hours = parse('BUSINESS_HOURS', parseBusinessHours);
  const clock = hours ? 'business' : 'wall';
  if (hours) {
    lines.push(`BUSINESS_HOURS: open hours in ${hours.hours.timeZone}, ${hours.hours.closed.size} closed date(s)`);
  }
  const rules = parse('STALE_RULES', (v) => parseResponseRules(v, { escalateAfterHours: Number.isFinite(escalate) && escalate > 0 ? escalate : 24 }));
  if (rules) {
    lines.push(`STALE_RULES: ${rules.rules.length} rule(s), first match wins:`, ...rules.rules.map((r) => `  ${describeRule(r, clock)}`));
  }
  return lines;
}

/** What applying the plan did. */
export interface SetupResult {
  botIds: Record<string, string>;
  applied: string[];
}

/**
 * Applies a plan. Bots created get their AccessPolicy on their membership at creation; what waited
 * on a new Bot id (its Subscription) is planned and applied in a second pass.
 * @param medplum - A client logged in as a Project admin.
 * @param state - The state the plan was made from.
 * @param bots - The bot entries of medplum.config.json.
 * @param options - Adopt, reset, runtime.
 * @param log - Where to report each step.
 * @returns The Bot ids and the steps applied.
 */
export async function applySetup(
  medplum: MedplumClient,
  state: ProjectState,
  bots: BotConfig[],
  options: SetupOptions,
  log: (line: string) => void
): Promise<SetupResult> {
  const applied: string[] = [];
  const botIds: Record<string, string> = {};
  // Two passes: the second picks up what depended on a Bot or AccessPolicy the first created.
  for (let pass = 0; pass < 2; pass++) {
    const plan = planSetup(state, bots, options);
    if (plan.blockers.length) {
      throw new Error(plan.blockers.join('\n'));
    }
    const writes = plan.steps.filter((s) => s.action !== 'keep' && !s.afterBotCreated);
    for (const step of writes) {
      await applyStep(medplum, state, step);
      applied.push(`${step.action} ${step.bot ?? ''}: ${step.why}`);
      log(`${step.action}${step.bot ? ` [${step.bot}]` : ''}: ${step.why}`);
    }
    if (pass === 0) {
      plan.steps.filter((s) => s.action === 'keep').forEach((s) => log(`kept${s.bot ? ` [${s.bot}]` : ''}: ${s.why}`));
    }
    for (const config of bots) {
      botIds[config.name] = state.bots[config.name]?.bot?.id ?? config.id;
    }
    if (!writes.length) {
      break;
    }
    state = await readProjectState(medplum, state.projectId, bots.map((b) => ({ ...b, id: botIds[b.name] })));
  }
  return { botIds, applied };
}

async function applyStep(medplum: MedplumClient, state: ProjectState, step: SetupStep): Promise<void> {
  const found = step.bot ? state.bots[step.bot] : undefined;
  switch (step.action) {
    case 'set-secrets': {
      // The whole list is written back, with the Project's version: a secret another admin set
      // meanwhile is read again and kept, and a default is added only where the name is still absent.
      const names = step.secretNames ?? [];
      const result = await updateSecrets(medplum, state.projectId, (current) => {
        const add = names.filter((name) => !current.some((s) => s.name === name));
        return add.length ? [...current, ...add.map((name) => ({ name, valueString: SECRET_DEFAULTS[name] }))] : undefined;
      });
      state.secrets = result.after;
      return;
    }
    case 'create-bot': {
      const bot = step.resource as Bot;
      const created = await medplum.post<WithId<Bot>>(`admin/projects/${state.projectId}/bot`, {
        name: bot.name,
        runtimeVersion: bot.runtimeVersion,
        accessPolicy: found?.policy ? { reference: `AccessPolicy/${found.policy.id}` } : undefined,
      });
      const current = await medplum.readResource('Bot', created.id);
      const updated = await medplum.updateResource<Bot>({ ...current, ...bot, runtimeVersion: current.runtimeVersion, id: created.id, meta: { ...current.meta, tag: bot.meta?.tag } });
      if (found) {
        found.bot = updated as WithId<Bot>;
        found.managed = true;
      }
      return;
    }
    case 'attach-policy': {
      const membership = step.resource as WithId<ProjectMembership>;
      await medplum.post(`admin/projects/${state.projectId}/members/${membership.id}`, membership);
      return;
    }
    case 'create-policy':
    case 'create-subscription': {
      const created = await medplum.createResource(step.resource as Resource);
      if (created.resourceType === 'AccessPolicy' && found) {
        found.policy = created as WithId<AccessPolicy>;
      }
      return;
    }
    default:
      await medplum.updateResource(step.resource as WithId<Resource>);
  }
}

/**
 * The plan as text, for a dry run and before applying: every step with why, secrets by name only.
 * @param plan - The plan.
 * @param verbose - Show each resource as FHIR JSON (never secrets).
 * @returns The lines.
 */
export function describePlan(plan: SetupPlan, verbose = false): string[] {
  const lines: string[] = [];
  for (const step of plan.steps) {
    lines.push(`${step.action === 'keep' ? 'keep' : step.action}${step.bot ? ` [${step.bot}]` : ''}: ${step.why}`);
    if (verbose && step.resource && step.action !== 'keep') {
      lines.push(...JSON.stringify(step.resource, null, 2).split('\n').map((l) => `    ${l}`));
    }
  }
  return lines;
}
