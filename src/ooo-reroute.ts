// Out-of-office reroute bot.
//
// Event path (Subscription on `Communication?part-of:missing=false&status=in-progress`): a patient
// writes in a thread; the thread's open response Tasks owned by a provider unavailable now go back to
// the pool (or to a covering provider), with a note saying why, and the absent owner leaves the
// header's recipients.
//
// Sweep (the same Bot on a cron schedule, or `Bot/{id}/$execute` with an empty body): the server does
// not retry a failed Subscription run, and the FHIR quota can refuse one, so correctness cannot rest
// on the event path. The sweep finds every thread waiting on the care team whose open Task is owned by
// a provider unavailable now, and every half-done reroute, and finishes them with the same decision
// (`planThread`) and the same guarded patches.
//
// Shape: gather facts with few searches (one availability check per distinct owner), decide with a
// pure function, apply with batches that never start what the quota left cannot cover.
import { getReferenceString } from '@medplum/core';
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type { Communication, Resource, Schedule, Task } from '@medplum/fhirtypes';
import { createBotLog, readJsonObjectSecret, readListSecret, readNumberSecret, RunFailedError } from './lib/bot-runtime';
import type { BotLog } from './lib/bot-runtime';
import { applyWrites, isOpenTask, OPEN_TASK_STATUSES, referenceType, scanAll, searchAll } from './lib/fhir';
import type { WriteOutcome } from './lib/fhir';
import { checkOwner } from './lib/owner-availability';
import type { OwnerAvailability } from './lib/owner-availability';
import { quotaLeft, QUOTA_COST, isQuotaError } from './lib/quota';
import { isReroutableOwner, latestReroute, OOO_BOT_NAME, ownersToCheck, planThread } from './lib/reroute-plan';
import type { OwnerFacts, TaskDecision, ThreadPlan, ThreadToReroute } from './lib/reroute-plan';
import { addToTimeline, messagePoint, senderRole } from './lib/thread';
import type { Timeline } from './lib/thread';

const DEFAULT_WINDOW_MINUTES = 60;
const DEFAULT_TIMEOUT_SECONDS = 10;
/** Threads per header or message search in the sweep (the ids go in the URL). */
const THREADS_PER_SEARCH = 100;
/** Owners per Schedule search. */
const OWNERS_PER_SEARCH = 50;
/** The sweep leaves this share of the quota it found to the event path, which shares the Bot's quota. */
const SWEEP_RESERVE_SHARE = 0.1;

/** Settings, from Bot secrets. */
export interface RerouteConfig {
  windowMinutes: number;
  coverage: Record<string, string>;
  serviceTypes: string[];
  timeoutMs: number;
}

/** Work left for a later run. */
export interface Deferred {
  /** The quota left this minute could not cover it. */
  quota: number;
  /** The Bot's timeout was near. */
  deadline: number;
}

/** What an event run did, returned to the caller and logged into the run's AuditEvent. */
export interface RerouteSummary {
  mode: 'event';
  outcome: 'ignored' | 'done' | 'deferred' | 'failed';
  reason?: string;
  thread?: string;
  message?: string;
  tasksExamined: number;
  rerouted: number;
  kept: number;
  /** Earlier half-done reroutes finished (owner removed from the header). */
  repaired: number;
  conflicts: number;
  failed: number;
  deferred: Deferred;
  decisions: TaskDecision[];
}

/** What a sweep did. */
export interface SweepSummary {
  mode: 'sweep';
  tasksScanned: number;
  ownersChecked: number;
  ownersUnavailable: number;
  /** Threads with an unavailable owner or a half-done reroute, read and decided. */
  threadsExamined: number;
  rerouted: number;
  repaired: number;
  kept: number;
  conflicts: number;
  failed: number;
  /** Threads left for the next sweep. */
  deferred: Deferred;
  stoppedEarly: boolean;
}

/**
 * Out-of-office reroute: the event path for a new message, the sweep for a cron run or an empty
 * `$execute`.
 *
 * Secrets: `OOO_WINDOW_MINUTES` (60): how far ahead the owner must be reachable; `OOO_COVERAGE`: JSON
 * map of owner reference to covering provider reference; `OOO_SERVICE_TYPE`: `system|code` list sent
 * to `$find`; `BOT_TIMEOUT_SECONDS` (10): the Bot's timeout.
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - A Subscription event (input: the new message) or a cron event (input: the Bot).
 * @returns A summary.
 */
export async function handler(medplum: MedplumClient, event: BotEvent<Resource>): Promise<RerouteSummary | SweepSummary> {
  const log = createBotLog(OOO_BOT_NAME);
  const config: RerouteConfig = {
    windowMinutes: readNumberSecret(event, 'OOO_WINDOW_MINUTES', DEFAULT_WINDOW_MINUTES, log),
    coverage: readJsonObjectSecret<Record<string, string>>(event, 'OOO_COVERAGE', {}, log),
    serviceTypes: readListSecret(event, 'OOO_SERVICE_TYPE'),
    timeoutMs: readNumberSecret(event, 'BOT_TIMEOUT_SECONDS', DEFAULT_TIMEOUT_SECONDS, log) * 1000,
  };
  const startedAt = Date.now();
  // Start no new work in the last 20% of the Bot's timeout (at least 2 s).
  const nearDeadline = (): boolean => Date.now() >= startedAt + config.timeoutMs - Math.max(2000, config.timeoutMs * 0.2);
  if (isSweepInput(event.input)) {
    return sweep(medplum, config, nearDeadline, log);
  }
  return onMessage(medplum, event.input, config, nearDeadline, log);
}

/**
 * Whether the input starts a sweep: the Bot resource (what the server passes on a cron run), or
 * nothing (`Bot/{id}/$execute` with an empty body).
 * @param input - `event.input`.
 * @returns True for a sweep.
 */
export function isSweepInput(input: unknown): boolean {
  if (input === undefined || input === null || input === '') {
    return true;
  }
  return typeof input === 'object' && (Object.keys(input).length === 0 || (input as Resource).resourceType === 'Bot');
}

type Trigger = { message: string; thread: string } | { ignore: string; id?: string };

/**
 * Decides whether an input message can trigger a reroute.
 * @param input - `event.input`.
 * @returns The message and thread references, or why the input is ignored.
 */
export function triageMessage(input: unknown): Trigger {
  const resource = input as Resource | undefined;
  if (resource?.resourceType !== 'Communication') {
    return { ignore: `input is ${resource?.resourceType ?? typeof input}, not a Communication` };
  }
  const id = resource.id ? getReferenceString(resource as WithId<Communication>) : undefined;
  if (resource.status !== 'in-progress') {
    return { ignore: `message status is ${resource.status}, not in-progress`, id };
  }
  if (!resource.partOf?.length) {
    return { ignore: 'message has no partOf (not in a thread)', id };
  }
  const thread = resource.partOf.find((ref) => referenceType(ref) === 'Communication');
  if (!thread?.reference) {
    return { ignore: 'partOf does not point at a Communication thread header', id };
  }
  if (!id) {
    return { ignore: 'message has no id', id };
  }
  const role = senderRole(resource.sender);
  if (role !== 'patient') {
    const who = resource.sender ? (referenceType(resource.sender) ?? 'not a literal reference') : 'missing';
    return { ignore: `sender is ${who} (${role}), not the patient side`, id };
  }
  return { message: id, thread: thread.reference };
}

// ---------------------------------------------------------------------------------------------
// Event path

async function onMessage(
  medplum: MedplumClient,
  input: Resource | undefined,
  config: RerouteConfig,
  nearDeadline: () => boolean,
  log: BotLog
): Promise<RerouteSummary> {
  const trigger = triageMessage(input);
  if ('ignore' in trigger) {
    log.info(`ignored${trigger.id ? ` ${trigger.id}` : ''}: ${trigger.ignore}`);
    return { ...emptyEventSummary('ignored'), reason: trigger.ignore, message: trigger.id };
  }
  const summary: RerouteSummary = { ...emptyEventSummary('done'), thread: trigger.thread, message: trigger.message };
  const owners = new OwnerCache();
  try {
    // A version-guarded patch that fails means someone changed the resource since it was read:
    // read again and decide again, once. The retry sees Tasks the first attempt moved as already
    // rerouted, and finishes the header if its patch was the one refused.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const thread = await readThread(medplum, trigger, log);
      owners.addIncluded(thread.included);
      const facts = await learnOwners(medplum, ownersToCheck(thread), owners, config, nearDeadline, log);
      const plan = planThread(thread, facts);
      summary.tasksExamined = thread.tasks.length;
      mergeDecisions(summary, plan);
      if (facts.deferred.size) {
        summary.deferred[facts.deferredWhy]++;
        break;
      }
      if (!plan.entries.length) {
        break;
      }
      if (nearDeadline()) {
        summary.deferred.deadline++;
        break;
      }
      const [outcomes] = await applyWrites(medplum, [plan.entries]);
      const conflicts = tallyWrites(summary, plan, outcomes, log);
      if (!conflicts || attempt === 2) {
        summary.conflicts += conflicts;
        break;
      }
      log.info(`${trigger.thread}: changed by someone else meanwhile; reading again`);
    }
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    summary.deferred.quota++;
  }
  return finishEvent(summary, log);
}

/** Reads one thread: its open Tasks with the header, owners and their Schedules, in one search. */
async function readThread(
  medplum: MedplumClient,
  trigger: { message: string; thread: string },
  log: BotLog
): Promise<ThreadToReroute & { included: WithId<Resource>[] }> {
  // `:iterate` is what makes the server follow Schedule.actor from the included owners.
  const resources = await searchAll(medplum, 'Task', [
    ['focus', trigger.thread],
    ['status', OPEN_TASK_STATUSES.join(',')],
    ['_include', 'Task:focus'],
    ['_include', 'Task:owner'],
    ['_revinclude:iterate', 'Schedule:actor'],
  ]);
  const byRef = new Map(resources.map((r) => [getReferenceString(r), r]));
  const tasks = resources.filter(
    (r): r is WithId<Task> => r.resourceType === 'Task' && r.focus?.reference === trigger.thread && isOpenTask(r)
  );
  const header = byRef.get(trigger.thread) as WithId<Communication> | undefined;
  if (!tasks.length) {
    log.info(`${trigger.thread}: no open Tasks on the thread; nothing to reroute`);
  } else if (!header) {
    log.info(`${trigger.thread}: thread header not found (deleted, or not readable by the bot); Tasks decided without it`);
  }
  return {
    thread: trigger.thread,
    header,
    tasks,
    trigger: trigger.message,
    waitingOnCareTeam: true,
    included: resources.filter((r) => r.resourceType !== 'Task'),
  };
}

function finishEvent(summary: RerouteSummary, log: BotLog): RerouteSummary {
  // Counted from the final decisions: a move whose write did not apply was turned into "kept".
  summary.kept = summary.decisions.filter((d) => d.action === 'kept').length;
  summary.decisions.forEach((d) => log.info(describeDecision(d)));
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  summary.outcome = summary.failed ? 'failed' : deferred ? 'deferred' : 'done';
  log.info(
    `${summary.thread} ${summary.message}: examined=${summary.tasksExamined} rerouted=${summary.rerouted} kept=${summary.kept} ` +
      `repaired=${summary.repaired} conflicts=${summary.conflicts} failed=${summary.failed} ` +
      `deferred=${JSON.stringify(summary.deferred)}${deferred || summary.conflicts ? '; the sweep finishes what is left' : ''}`
  );
  if (summary.failed) {
    // The server records the run as failed; nothing is half-done that the sweep does not finish.
    throw new RunFailedError(`${OOO_BOT_NAME}: ${summary.failed} write(s) failed for ${summary.thread}; the sweep retries them`, summary);
  }
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Sweep

async function sweep(medplum: MedplumClient, config: RerouteConfig, nearDeadline: () => boolean, log: BotLog): Promise<SweepSummary> {
  const summary = emptySweepSummary();
  try {
    await sweepThreads(medplum, config, nearDeadline, log, summary);
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    summary.stoppedEarly = true;
    log.warn('stopped early (quota): the FHIR quota ran out while reading; the next sweep starts over');
  }
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  summary.stoppedEarly ||= deferred > 0;
  log.info(
    `sweep: tasks=${summary.tasksScanned} owners=${summary.ownersChecked} unavailable=${summary.ownersUnavailable} ` +
      `threads=${summary.threadsExamined} rerouted=${summary.rerouted} repaired=${summary.repaired} kept=${summary.kept} ` +
      `conflicts=${summary.conflicts} failed=${summary.failed} deferred=${JSON.stringify(summary.deferred)}` +
      `${deferred ? '; the next sweep finishes what is left' : ''}`
  );
  if (summary.failed) {
    throw new RunFailedError(`${OOO_BOT_NAME}: ${summary.failed} write(s) failed in the sweep; the next sweep retries them`, summary);
  }
  return summary;
}

async function sweepThreads(
  medplum: MedplumClient,
  config: RerouteConfig,
  nearDeadline: () => boolean,
  log: BotLog,
  summary: SweepSummary
): Promise<void> {
  // 1. Every open Task on a thread: ids, owners, notes (to recognise earlier reroutes).
  const tasksByThread = new Map<string, WithId<Task>[]>();
  const complete = await scanAll(
    medplum,
    'Task',
    { status: OPEN_TASK_STATUSES.join(','), 'focus:missing': 'false', _elements: 'focus,owner,status,note' },
    (r) => {
      const task = r as WithId<Task>;
      const thread = task.focus?.reference;
      if (thread && referenceType(task.focus) === 'Communication') {
        tasksByThread.set(thread, [...(tasksByThread.get(thread) ?? []).filter((t) => t.id !== task.id), task]);
        summary.tasksScanned++;
      }
    },
    { nearDeadline, log }
  );
  if (!complete) {
    summary.stoppedEarly = true;
    log.warn('deadline reached while scanning Tasks; nothing written, the next sweep starts over');
    return;
  }
  const reserve = (quotaLeft(medplum)?.points ?? 0) * SWEEP_RESERVE_SHARE;

  // 2. One availability check per distinct owner: current owners, and owners of earlier reroutes.
  const candidates = new Set<string>();
  for (const tasks of tasksByThread.values()) {
    for (const task of tasks) {
      if (isReroutableOwner(task.owner?.reference)) {
        candidates.add(task.owner.reference);
      }
      const earlier = latestReroute(task);
      if (earlier && earlier.from !== task.owner?.reference && isReroutableOwner(earlier.from)) {
        candidates.add(earlier.from);
      }
    }
  }
  const facts = await learnOwners(medplum, [...candidates], new OwnerCache(), config, nearDeadline, log, reserve);
  summary.ownersChecked = [...facts.availability.values()].length;
  const unavailable = new Set([...facts.availability].filter(([, a]) => a.state === 'unavailable').map(([o]) => o));
  summary.ownersUnavailable = unavailable.size;

  // 3. Threads worth reading: an unavailable owner holds a Task, or an earlier reroute from one.
  const threads = [...tasksByThread].filter(([, tasks]) =>
    tasks.some((t) => unavailable.has(t.owner?.reference ?? '') || unavailable.has(latestReroute(t)?.from ?? ''))
  );
  // Threads whose owners the quota or the deadline kept from being checked wait for the next sweep.
  summary.deferred[facts.deferredWhy] += [...tasksByThread.values()].filter(
    (tasks) => !tasks.some((t) => unavailable.has(t.owner?.reference ?? '')) && tasks.some((t) => facts.deferred.has(t.owner?.reference ?? ''))
  ).length;

  // 4. Read those threads (open headers and their messages), decide each with the event path's function.
  const plans: ThreadPlan[] = [];
  for (let i = 0; i < threads.length; i += THREADS_PER_SEARCH) {
    const chunk = threads.slice(i, i + THREADS_PER_SEARCH);
    if (nearDeadline() || (quotaLeft(medplum)?.points ?? Infinity) < 2 * QUOTA_COST.search + reserve) {
      summary.deferred[nearDeadline() ? 'deadline' : 'quota'] += threads.length - i;
      break;
    }
    const read = await readThreads(medplum, chunk, log);
    for (const thread of read) {
      summary.threadsExamined++;
      plans.push(planThread(thread, facts));
    }
  }

  // 5. Apply, one group per thread, within the quota left.
  const groups = plans.filter((p) => p.entries.length);
  const outcomes = await applyWrites(
    medplum,
    groups.map((p) => p.entries),
    { shouldStop: nearDeadline, reserve }
  );
  for (const plan of plans) {
    summary.kept += plan.decisions.filter((d) => d.action === 'kept').length;
  }
  groups.forEach((plan, i) => {
    const result = tallyPlan(plan, outcomes[i], log);
    summary.rerouted += result.rerouted;
    summary.repaired += result.repaired;
    summary.conflicts += result.conflicts;
    summary.failed += result.failed;
    if (result.deferred) {
      summary.deferred[result.deferred]++;
    }
  });
}

/** Reads a chunk of threads: open headers by id, and every message of them. */
async function readThreads(medplum: MedplumClient, chunk: [string, WithId<Task>[]][], log: BotLog): Promise<ThreadToReroute[]> {
  const ids = chunk.map(([ref]) => ref.split('/')[1]);
  const headers = new Map(
    (await searchAll(medplum, 'Communication', { _id: ids.join(','), status: 'in-progress' })).map((h) => [getReferenceString(h), h as WithId<Communication>])
  );
  const timelines = new Map<string, Timeline>();
  for (const [ref, header] of headers) {
    const timeline: Timeline = { ignored: 0 };
    if (header.sender) {
      addToTimeline(timeline, messagePoint(header)); // a header with a sender is the thread's first message
    }
    timelines.set(ref, timeline);
  }
  const refs = [...headers.keys()];
  if (refs.length) {
    for (const message of await searchAll(medplum, 'Communication', { 'part-of': refs.join(','), _elements: 'partOf,sender,sent,status' })) {
      const m = message as WithId<Communication>;
      const timeline = timelines.get(m.partOf?.find((p) => headers.has(p.reference ?? ''))?.reference ?? '');
      if (timeline && m.status !== 'entered-in-error') {
        addToTimeline(timeline, messagePoint(m));
      }
    }
  }
  const closed = chunk.length - headers.size;
  if (closed) {
    log.info(`sweep: ${closed} thread(s) with open Tasks are not in progress (closed or deleted); left alone`);
  }
  return chunk.flatMap(([ref, tasks]) => {
    const header = headers.get(ref);
    const timeline = timelines.get(ref);
    if (!header || !timeline) {
      return [];
    }
    return [{ thread: ref, header, tasks, trigger: timeline.lastPatient?.ref, waitingOnCareTeam: timeline.last?.role === 'patient' }];
  });
}

// ---------------------------------------------------------------------------------------------
// Owners: shared by both paths

/** What is known of owners across the attempts of one run: Schedules, resources, availability. */
class OwnerCache {
  /** Schedules per owner; an owner listed here has had all its Schedules read. */
  readonly schedules = new Map<string, WithId<Schedule>[]>();
  readonly actors = new Map<string, Resource>();
  readonly availability = new Map<string, OwnerAvailability>();

  /**
   * Takes the owners and Schedules a Task search included (`_include=Task:owner`,
   * `_revinclude:iterate=Schedule:actor`): every Schedule of each included owner comes with it.
   * @param included - Included resources.
   */
  addIncluded(included: WithId<Resource>[]): void {
    const schedules = included.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule');
    for (const actor of included.filter((r) => isReroutableOwner(getReferenceString(r)))) {
      const ref = getReferenceString(actor);
      this.actors.set(ref, actor);
      this.schedules.set(ref, schedules.filter((s) => s.actor?.some((a) => a.reference === ref)));
    }
  }
}

/**
 * Learns whether each owner is available now (and each unavailable owner's cover), one check per
 * distinct owner. Owners not reached (quota or deadline) are left out of `availability` and listed
 * in `deferred`.
 * @param medplum - The client.
 * @param owners - Owner references to check.
 * @param cache - What earlier attempts learned.
 * @param config - Window, coverage, service types.
 * @param included - Schedules already read (the event path's includes).
 * @param nearDeadline - Deadline check.
 * @param log - Logger.
 * @param reserve - Quota points not to spend.
 * @returns The owner facts for `planThread`, and who was not reached.
 */
async function learnOwners(
  medplum: MedplumClient,
  owners: string[],
  cache: OwnerCache,
  config: RerouteConfig,
  nearDeadline: () => boolean,
  log: BotLog,
  reserve = 0
): Promise<OwnerFacts & { deferred: Set<string>; deferredWhy: keyof Deferred }> {
  const now = Date.now();
  const facts = { now: new Date(now).toISOString(), availability: new Map<string, OwnerAvailability>(), cover: new Map<string, string>() };
  const deferred = new Set<string>();
  let deferredWhy: keyof Deferred = 'quota';
  const check = async (owner: string): Promise<OwnerAvailability | undefined> => {
    const known = cache.availability.get(owner);
    if (known) {
      return known;
    }
    if (nearDeadline() || (quotaLeft(medplum)?.points ?? Infinity) < 2 * QUOTA_COST.find + QUOTA_COST.search + reserve) {
      deferredWhy = nearDeadline() ? 'deadline' : 'quota';
      return undefined;
    }
    const availability = await checkOwner(
      medplum,
      cache.actors.get(owner),
      cache.schedules.get(owner) ?? [],
      { now, windowMinutes: config.windowMinutes, serviceTypes: config.serviceTypes },
      log
    );
    cache.availability.set(owner, availability);
    return availability;
  };

  const covers = owners.map((o) => config.coverage[o]).filter((c): c is string => !!c && isReroutableOwner(c));
  await readSchedules(medplum, [...owners, ...covers].filter((o) => !cache.schedules.has(o)), cache);
  for (const owner of owners) {
    const availability = await check(owner);
    if (!availability) {
      deferred.add(owner);
      continue;
    }
    facts.availability.set(owner, availability);
    const coverRef = config.coverage[owner];
    if (availability.state !== 'unavailable' || !coverRef) {
      continue;
    }
    if (!isReroutableOwner(coverRef) || coverRef === owner) {
      log.warn(`OOO_COVERAGE entry for ${owner} is not another Practitioner or PractitionerRole; ignored`);
      continue;
    }
    const coverState = await check(coverRef);
    if (coverState?.state === 'available') {
      facts.cover.set(owner, coverRef);
    } else {
      log.info(`cover ${coverRef} for ${owner} not available (${coverState?.reason ?? 'not checked'}); using the pool`);
    }
  }
  return { ...facts, deferred, deferredWhy };
}

/** Reads the Schedules (with their actors) of owners not known yet, a few owners per search. */
async function readSchedules(medplum: MedplumClient, owners: string[], cache: OwnerCache): Promise<void> {
  const wanted = [...new Set(owners)];
  for (let i = 0; i < wanted.length; i += OWNERS_PER_SEARCH) {
    const chunk = wanted.slice(i, i + OWNERS_PER_SEARCH);
    const found = await searchAll(medplum, 'Schedule', [
      ['actor', chunk.join(',')],
      ['_include', 'Schedule:actor'],
    ]);
    for (const owner of chunk) {
      cache.schedules.set(owner, found.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule' && !!r.actor?.some((a) => a.reference === owner)));
      const actor = found.find((r) => getReferenceString(r) === owner);
      if (actor) {
        cache.actors.set(owner, actor);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tallies

function tallyPlan(
  plan: ThreadPlan,
  outcomes: WriteOutcome[],
  log: BotLog
): { rerouted: number; repaired: number; conflicts: number; failed: number; deferred?: keyof Deferred } {
  const result = { rerouted: 0, repaired: 0, conflicts: 0, failed: 0, deferred: undefined as keyof Deferred | undefined };
  const moved = plan.decisions.filter((d) => d.action !== 'kept');
  plan.entries.forEach((entry, i) => {
    const outcome = outcomes[i];
    const isHeader = i >= moved.length;
    if (outcome.kind === 'applied') {
      if (isHeader) {
        result.repaired += plan.repaired.length;
      } else {
        result.rerouted++;
      }
    } else if (outcome.kind === 'conflict') {
      result.conflicts++;
      log.info(`${entry.request?.url} changed meanwhile; decided again next time`);
    } else if (outcome.kind === 'deferred') {
      result.deferred = outcome.why;
    } else {
      result.failed++;
      log.warn(`write ${entry.request?.url} failed (${outcome.status}): ${outcome.error}`);
    }
  });
  return result;
}

/** Adds a plan's decisions to the event summary, keeping earlier attempts' moves. */
function mergeDecisions(summary: RerouteSummary, plan: ThreadPlan): void {
  const moved = summary.decisions.filter((d) => d.action !== 'kept');
  summary.decisions = [...moved, ...plan.decisions.filter((d) => !moved.some((m) => m.task === d.task))];
}

/**
 * Adds an attempt's write outcomes to the event summary.
 * @returns The number of conflicts (a reason to read again).
 */
function tallyWrites(summary: RerouteSummary, plan: ThreadPlan, outcomes: WriteOutcome[], log: BotLog): number {
  const result = tallyPlan(plan, outcomes, log);
  summary.rerouted += result.rerouted;
  summary.repaired += result.repaired;
  summary.failed += result.failed;
  if (result.deferred) {
    summary.deferred[result.deferred]++;
  }
  // Decisions whose patch did not apply are not moves.
  const moved = plan.decisions.filter((d) => d.action !== 'kept');
  moved.forEach((d, i) => {
    if (outcomes[i].kind !== 'applied') {
      summary.decisions = summary.decisions.map((s) => (s.task === d.task ? { ...s, action: 'kept', reason: `${d.action} not applied (${outcomes[i].kind})` } : s));
    }
  });
  return result.conflicts;
}

function emptyEventSummary(outcome: RerouteSummary['outcome']): RerouteSummary {
  return {
    mode: 'event',
    outcome,
    tasksExamined: 0,
    rerouted: 0,
    kept: 0,
    repaired: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    decisions: [],
  };
}

function emptySweepSummary(): SweepSummary {
  return {
    mode: 'sweep',
    tasksScanned: 0,
    ownersChecked: 0,
    ownersUnavailable: 0,
    threadsExamined: 0,
    rerouted: 0,
    repaired: 0,
    kept: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    stoppedEarly: false,
  };
}

function describeDecision(d: TaskDecision): string {
  const target = d.action === 'to-cover' ? ` -> ${d.cover}` : '';
  return `${d.task} owner=${d.owner ?? 'none'} ${d.action}${target}: ${d.reason}`;
}

