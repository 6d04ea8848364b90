// `npm run setup`: makes a Project ready for the bots, idempotently.
//
// Reads what the Project has (Bots, their memberships, AccessPolicies, the Subscription, secrets),
// plans the differences with a pure function, and applies them. A second run plans nothing.
import type { MedplumClient, WithId } from '@medplum/core';
import type { AccessPolicy, Bot, ProjectMembership, ProjectSetting, Resource, Subscription } from '@medplum/fhirtypes';
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
/** The runtime the bundles are built for (the footer that exposes `exports.handler`). */
export const BOT_RUNTIME = 'vmcontext';

/** Secrets each bot reads, with the defaults setup writes where a secret is absent. */
export const SECRET_DEFAULTS: Record<string, Record<string, string>> = {
  'ooo-reroute': { OOO_WINDOW_MINUTES: '60', OOO_COVERAGE: '{}' },
  'stale-thread-reminders': {
    STALE_AFTER_HOURS: '72',
    ESCALATE_AFTER_HOURS: '24',
    BOT_TIMEOUT_SECONDS: '60',
    STALE_THREAD_CRON: '0 * * * *',
  },
};

/** What each bot needs besides its code. */
export const BOT_WIRING: Record<string, { accessPolicy: AccessPolicy; subscription?: Subscription; cron?: boolean }> = {
  'ooo-reroute': { accessPolicy: oooAccessPolicy as AccessPolicy, subscription: oooSubscription as Subscription },
  'stale-thread-reminders': { accessPolicy: staleAccessPolicy as AccessPolicy, cron: true },
};

/** What the Project has now. */
export interface ProjectState {
  projectId: string;
  features?: string[];
  secrets: ProjectSetting[];
  bots: Record<string, WithId<Bot> | undefined>;
  memberships: Record<string, WithId<ProjectMembership> | undefined>;
  accessPolicies: Record<string, WithId<AccessPolicy> | undefined>;
  subscriptions: WithId<Subscription>[];
}

/** One change setup makes. */
export interface SetupStep {
  action: 'create-bot' | 'create' | 'update' | 'set-secrets' | 'attach-policy';
  /** The bot the step belongs to. */
  bot?: string;
  why: string;
  resource: Resource | ProjectSetting[];
  /** Needs the id of a Bot this run creates first: shown in a dry run, applied in the next pass. */
  afterBotCreated?: boolean;
}

/**
 * Reads what setup needs to know about a Project.
 * @param medplum - A client logged in as a Project admin.
 * @param projectId - The Project id.
 * @param bots - The bot entries of medplum.config.json.
 * @returns The state.
 */
export async function readProjectState(medplum: MedplumClient, projectId: string, bots: BotConfig[]): Promise<ProjectState> {
  const admin = await medplum.get<{ project: { secret?: ProjectSetting[]; features?: string[] } }>(`admin/projects/${projectId}`);
  const state: ProjectState = {
    projectId,
    features: medplum.getProject()?.features ?? admin.project.features,
    secrets: admin.project.secret ?? [],
    bots: {},
    memberships: {},
    accessPolicies: {},
    subscriptions: await medplum.searchResources('Subscription', { criteria: oooSubscription.criteria, _count: '100' }),
  };
  for (const config of bots) {
    const bot = await findBot(medplum, config);
    state.bots[config.name] = bot;
    state.memberships[config.name] = bot
      ? await medplum.searchOne('ProjectMembership', { profile: `Bot/${bot.id}` })
      : undefined;
    const policyName = BOT_WIRING[config.name]?.accessPolicy.name;
    state.accessPolicies[config.name] = policyName ? await medplum.searchOne('AccessPolicy', { name: policyName }) : undefined;
  }
  return state;
}

async function findBot(medplum: MedplumClient, config: BotConfig): Promise<WithId<Bot> | undefined> {
  if (config.id && config.id !== PLACEHOLDER_BOT_ID) {
    const byId = await medplum.readResource('Bot', config.id).catch(() => undefined);
    if (byId) {
      return byId;
    }
  }
  // A Bot of that name made by an earlier run whose config change was not kept. (`name` alone
  // matches prefixes: "ooo-reroute" would find "ooo-reroute-old".)
  const byName = (await medplum.searchResources('Bot', { 'name:exact': config.name })).filter((b) => b.name === config.name);
  if (byName.length > 1) {
    throw new Error(
      `several Bots are named "${config.name}" (${byName.map((b) => `Bot/${b.id}`).join(', ')}): put the right id in the config`
    );
  }
  return byName[0];
}

/** An empty Project, for a dry run without credentials. */
export function emptyProjectState(): ProjectState {
  return { projectId: '<project id>', secrets: [], bots: {}, memberships: {}, accessPolicies: {}, subscriptions: [] };
}

/**
 * The pure plan: what to create or update so the Project matches what the bots need.
 * Resources that depend on a Bot id not known yet (a Bot to be created) carry a placeholder.
 * @param state - What the Project has.
 * @param bots - The bot entries of medplum.config.json.
 * @returns The steps, in the order to apply them; empty when the Project is ready.
 */
export function planSetup(state: ProjectState, bots: BotConfig[]): SetupStep[] {
  const steps: SetupStep[] = [];
  const secrets = new Map(state.secrets.map((s) => [s.name, s]));
  const missingSecrets: ProjectSetting[] = [];
  for (const config of bots) {
    for (const [name, value] of Object.entries(SECRET_DEFAULTS[config.name] ?? {})) {
      if (!secrets.has(name) && !missingSecrets.some((s) => s.name === name)) {
        missingSecrets.push({ name, valueString: value });
      }
    }
  }
  if (missingSecrets.length) {
    steps.push({
      action: 'set-secrets',
      why: `secrets the bots read are absent; defaults added: ${missingSecrets.map((s) => s.name).join(', ')}`,
      resource: [...state.secrets, ...missingSecrets],
    });
  }
  const secret = (name: string): string | undefined => {
    const s = secrets.get(name) ?? missingSecrets.find((m) => m.name === name);
    return s?.valueString ?? (s?.valueInteger !== undefined ? String(s.valueInteger) : undefined);
  };

  for (const config of bots) {
    const wiring = BOT_WIRING[config.name];
    if (!wiring) {
      continue;
    }
    // AccessPolicy first: a Bot created through the admin API gets it on its membership at once.
    const policy = state.accessPolicies[config.name];
    const desiredPolicy: AccessPolicy = { ...wiring.accessPolicy, ...(policy ? { id: policy.id, meta: policy.meta } : {}) };
    if (!policy) {
      steps.push({ action: 'create', bot: config.name, why: `AccessPolicy "${wiring.accessPolicy.name}" limits the bot to what its code uses`, resource: wiring.accessPolicy });
    } else if (!sameContent(policy, desiredPolicy)) {
      steps.push({ action: 'update', bot: config.name, why: `AccessPolicy "${policy.name}" differs from what the bot needs`, resource: desiredPolicy });
    }

    const bot = state.bots[config.name];
    const desiredBot = desiredBotFields(config.name, wiring.cron, secret);
    if (!bot) {
      steps.push({
        action: 'create-bot',
        bot: config.name,
        why: 'the Bot does not exist; created through the Project admin API so that it has a ProjectMembership (Subscriptions to a Bot without one fail)',
        resource: { resourceType: 'Bot', name: config.name, ...desiredBot },
      });
    } else if (Object.entries(desiredBot).some(([k, v]) => (bot as unknown as Record<string, unknown>)[k] !== v)) {
      steps.push({ action: 'update', bot: config.name, why: `Bot "${config.name}" runtime, timeout or cron differ`, resource: { ...bot, ...desiredBot } });
    }

    const membership = state.memberships[config.name];
    if (bot && policy && membership && membership.accessPolicy?.reference !== `AccessPolicy/${policy.id}`) {
      steps.push({
        action: 'attach-policy',
        bot: config.name,
        why: `the Bot's ProjectMembership does not use AccessPolicy "${policy.name}"`,
        resource: { ...membership, accessPolicy: { reference: `AccessPolicy/${policy.id}` } },
      });
    }

    if (wiring.subscription) {
      const endpoint = bot ? `Bot/${bot.id}` : `Bot/<id of ${config.name}>`;
      const existing = state.subscriptions.find((s) => s.channel?.endpoint === endpoint);
      const desired: Subscription = { ...wiring.subscription, channel: { ...wiring.subscription.channel, endpoint } };
      if (!existing) {
        steps.push({
          action: 'create',
          bot: config.name,
          why: `no Subscription sends new thread messages to ${config.name}`,
          resource: desired,
          afterBotCreated: !bot,
        });
      } else if (!sameContent(existing, { ...desired, id: existing.id, meta: existing.meta })) {
        steps.push({ action: 'update', bot: config.name, why: `Subscription ${existing.id} differs (status, criteria or interaction filter)`, resource: { ...desired, id: existing.id, meta: existing.meta } });
      }
    }
  }
  return steps;
}

function desiredBotFields(name: string, cron: boolean | undefined, secret: (name: string) => string | undefined): Partial<Bot> {
  const fields: Partial<Bot> = { runtimeVersion: BOT_RUNTIME };
  if (cron) {
    fields.cronString = secret('STALE_THREAD_CRON') ?? SECRET_DEFAULTS[name].STALE_THREAD_CRON;
    fields.timeout = Number(secret('BOT_TIMEOUT_SECONDS') ?? SECRET_DEFAULTS[name].BOT_TIMEOUT_SECONDS);
  }
  return fields;
}

function sameContent(a: Resource, b: Resource): boolean {
  const strip = (r: Resource): string => JSON.stringify(r, (key, value) => (key === 'meta' ? undefined : value));
  return strip(a) === strip(b);
}

/** What applying the plan did. */
export interface SetupResult {
  botIds: Record<string, string>;
  applied: string[];
}

/**
 * Applies a plan. Bots created get their AccessPolicy on their membership at creation; resources that
 * waited on a new Bot id (its Subscription, its membership's policy) are planned and applied again.
 * @param medplum - A client logged in as a Project admin.
 * @param state - The state the plan was made from.
 * @param bots - The bot entries of medplum.config.json.
 * @param log - Where to report each step.
 * @returns The Bot ids and the steps applied.
 */
export async function applySetup(
  medplum: MedplumClient,
  state: ProjectState,
  bots: BotConfig[],
  log: (line: string) => void
): Promise<SetupResult> {
  const applied: string[] = [];
  // Two passes: the second picks up what depended on a Bot or AccessPolicy the first created.
  for (let pass = 0; pass < 2; pass++) {
    const steps = planSetup(state, bots);
    if (!steps.length) {
      break;
    }
    for (const step of steps) {
      if (step.afterBotCreated) {
        continue;
      }
      await applyStep(medplum, state, step);
      applied.push(`${step.action} ${step.bot ?? ''}: ${step.why}`);
      log(`${step.action}${step.bot ? ` [${step.bot}]` : ''}: ${step.why}`);
    }
    state = await readProjectState(medplum, state.projectId, bots.map((b) => ({ ...b, id: state.bots[b.name]?.id ?? b.id })));
  }
  const botIds: Record<string, string> = {};
  for (const config of bots) {
    botIds[config.name] = state.bots[config.name]?.id ?? config.id;
  }
  return { botIds, applied };
}

async function applyStep(medplum: MedplumClient, state: ProjectState, step: SetupStep): Promise<void> {
  const resource = step.resource;
  if (step.action === 'set-secrets') {
    await medplum.post(`admin/projects/${state.projectId}/secrets`, resource);
    state.secrets = resource as ProjectSetting[];
  } else if (step.action === 'create-bot') {
    const bot = resource as Bot;
    const policy = step.bot ? state.accessPolicies[step.bot] : undefined;
    const created = await medplum.post<WithId<Bot>>(`admin/projects/${state.projectId}/bot`, {
      name: bot.name,
      runtimeVersion: bot.runtimeVersion,
      accessPolicy: policy ? { reference: `AccessPolicy/${policy.id}` } : undefined,
    });
    state.bots[step.bot as string] = await medplum.updateResource({ ...(await medplum.readResource('Bot', created.id)), ...bot, id: created.id });
  } else if (step.action === 'attach-policy') {
    const membership = resource as WithId<ProjectMembership>;
    await medplum.post(`admin/projects/${state.projectId}/members/${membership.id}`, membership);
  } else if (step.action === 'create') {
    const created = await medplum.createResource(resource as Resource);
    if (created.resourceType === 'AccessPolicy' && step.bot) {
      state.accessPolicies[step.bot] = created;
    }
  } else {
    await medplum.updateResource(resource as WithId<Resource>);
  }
}
