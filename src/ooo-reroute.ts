// Out-of-office reroute bot.
//
// Triggered by a Subscription on `Communication?part-of:missing=false&status=in-progress` (a new
// message in a thread). When a patient writes and the provider who owns the thread's response Task
// is unavailable now, the Task goes back to the pool (or to a covering provider) so the message does
// not sit in an absent provider's queue.
//
// Shape: gather facts (one Task search with includes, one `$find` per owner Schedule), decide with a
// pure function (`planReroutes`), apply with one batch of version-guarded patches.
import { getReferenceString, getStatus, normalizeErrorString } from '@medplum/core';
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type {
  Annotation,
  Bundle,
  BundleEntry,
  Communication,
  OperationOutcome,
  Parameters,
  Reference,
  Resource,
  Schedule,
  Slot,
  Task,
} from '@medplum/fhirtypes';
import {
  findQueryWindow,
  getSlotGrid,
  getTimeZone,
  hasFreeSlotOverlapping,
  slotsFromFindResponse,
} from './lib/availability';
import type { Interval } from './lib/availability';
import { createBotLog, readJsonObjectSecret, readNumberSecret } from './lib/bot-runtime';
import type { BotLog } from './lib/bot-runtime';
import {
  executeBatch,
  guardedPatchEntry,
  isOpenTask,
  isPatientSide,
  OPEN_TASK_STATUSES,
  referenceType,
  searchAll,
} from './lib/fhir';
import type { PatchOperation } from './lib/fhir';

const BOT_NAME = 'ooo-reroute';
const DEFAULT_WINDOW_MINUTES = 60;
const DEFAULT_TIMEOUT_SECONDS = 10;
/** When `$find` offers no grid to widen to (no scheduling parameters), query on an hourly grid. */
const DEFAULT_GRID = { spanMinutes: 60, alignmentMinutes: 60 };
const REROUTABLE_OWNER_TYPES = ['Practitioner', 'PractitionerRole'];

/** Whether an owner can be reached now, and why we think so. */
export interface OwnerAvailability {
  state: 'available' | 'unavailable' | 'unknown';
  /** A short code-like reason, safe to log and to put in a Task note. */
  reason: string;
}

/** Everything `planReroutes` decides from. */
export interface RerouteFacts {
  now: string;
  /** Reference string of the triggering message. */
  message: string;
  /** Reference string of the thread header. */
  thread: string;
  /** The thread header, when it exists. */
  header?: WithId<Communication>;
  /** Tasks found focused on the thread. */
  tasks: WithId<Task>[];
  /** Availability per owner reference string. */
  availability: Map<string, OwnerAvailability>;
  /** Available covering provider per unavailable owner reference string. */
  cover: Map<string, string>;
}

/** What happened to one Task. */
export interface TaskDecision {
  task: string;
  owner?: string;
  action: 'to-pool' | 'to-cover' | 'kept';
  reason: string;
  cover?: string;
}

/** The writes to make and the decisions behind them. */
export interface ReroutePlan {
  decisions: TaskDecision[];
  entries: BundleEntry[];
}

/** What a run did, returned to the caller and shown in the bot's AuditEvent. */
export interface RerouteSummary {
  outcome: 'ignored' | 'done' | 'failed';
  reason?: string;
  thread?: string;
  message?: string;
  tasksExamined: number;
  rerouted: number;
  kept: number;
  failed: number;
  decisions: TaskDecision[];
}

/**
 * Out-of-office reroute: returns a thread's open response Tasks to the pool (or to a covering
 * provider) when a patient writes while the Task owner is unavailable.
 *
 * Secrets: `OOO_WINDOW_MINUTES` (default 60): how far ahead the owner must be reachable;
 * `OOO_COVERAGE`: JSON map of owner reference to covering provider reference;
 * `BOT_TIMEOUT_SECONDS` (default 10): the Bot's timeout; no write starts close to it.
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - The Subscription event; `event.input` is the new message.
 * @returns A summary of the decisions.
 */
export async function handler(medplum: MedplumClient, event: BotEvent<Resource>): Promise<RerouteSummary> {
  const log = createBotLog(BOT_NAME);
  const trigger = triageMessage(event.input);
  if ('ignore' in trigger) {
    log.info(`ignored: ${trigger.ignore}${trigger.id ? ` (${trigger.id})` : ''}`);
    return { ...emptySummary('ignored'), reason: trigger.ignore, message: trigger.id };
  }
  const startedAt = Date.now();
  const windowMinutes = readNumberSecret(event, 'OOO_WINDOW_MINUTES', DEFAULT_WINDOW_MINUTES, log);
  const coverage = readJsonObjectSecret<Record<string, string>>(event, 'OOO_COVERAGE', {}, log);
  const timeoutMs = readNumberSecret(event, 'BOT_TIMEOUT_SECONDS', DEFAULT_TIMEOUT_SECONDS, log) * 1000;
  // Start no write in the last 20% of the Bot's timeout (at least 2 s): a run cut off mid-batch
  // would be redelivered anyway, but one that fails cleanly says why.
  const nearDeadline = (): boolean => Date.now() >= startedAt + timeoutMs - Math.max(2000, timeoutMs * 0.2);

  let summary = emptySummary('done');
  // Reroutes applied by a first attempt; a second attempt sees those Tasks without owner.
  const applied: TaskDecision[] = [];
  // A version-guarded patch that fails means someone changed the resource since we read it:
  // read again and decide again, once.
  for (let attempt = 1; attempt <= 2; attempt++) {
    const facts = await gatherFacts(medplum, trigger, windowMinutes, coverage, log);
    const plan = planReroutes(facts);
    plan.decisions = [...applied, ...plan.decisions.filter((d) => !applied.some((a) => a.task === d.task))];
    if (plan.entries.length && nearDeadline()) {
      log.warn(`thread ${facts.thread}: deadline near, ${plan.entries.length} write(s) not started; a redelivery makes them`);
      throw new Error(`${BOT_NAME}: deadline near before writing for ${facts.thread}`);
    }
    const results = await executeBatch(medplum, plan.entries);
    const failures = results.filter((r) => !r?.ok);
    summary = summarize(facts, plan, failures.length);
    if (failures.length === 0) {
      plan.decisions.forEach((d) => log.info(describeDecision(d)));
      break;
    }
    plan.entries.forEach((entry, i) => {
      const decision = plan.decisions.find((d) => d.task === entry.request?.url && d.action !== 'kept');
      if (results[i]?.ok && decision) {
        applied.push(decision);
      } else if (!results[i]?.ok) {
        log.warn(`write ${entry.request?.url} failed (${results[i]?.status}): ${results[i]?.error}`);
      }
    });
    const batchFailed = failures.some((r) => r?.status === 'error');
    if (batchFailed || attempt === 2) {
      // Nothing is half-done: each entry is a whole, version-guarded change, so a redelivery of
      // the same message re-reads and completes whatever did not apply.
      log.warn(`thread ${facts.thread}: ${failures.length} write(s) failed; run fails so it can be redelivered`);
      throw new Error(`${BOT_NAME}: ${failures.length} write(s) failed for ${facts.thread}`);
    }
    log.info(`thread ${facts.thread}: concurrent change detected; reading again`);
  }
  log.info(
    `thread ${summary.thread}: examined=${summary.tasksExamined} rerouted=${summary.rerouted} kept=${summary.kept}`
  );
  return summary;
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
    return { ignore: 'input is not a Communication' };
  }
  const id = resource.id ? getReferenceString(resource) : undefined;
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
  if (!resource.sender) {
    return { ignore: 'message has no sender', id };
  }
  if (!isPatientSide(resource.sender)) {
    return { ignore: `sender is ${referenceType(resource.sender) ?? 'not a literal reference'}, not the patient side`, id };
  }
  return { message: id, thread: thread.reference };
}

async function gatherFacts(
  medplum: MedplumClient,
  trigger: { message: string; thread: string },
  windowMinutes: number,
  coverage: Record<string, string>,
  log: BotLog
): Promise<RerouteFacts> {
  const now = Date.now();
  // One search: the open Tasks on the thread, the thread header, each owner, and each owner's
  // Schedules (`:iterate` is what makes the server follow Schedule.actor from the included owners).
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
  const schedules = resources.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule');

  const window: Interval = { start: now, end: now + windowMinutes * 60_000 };
  const availability = new Map<string, OwnerAvailability>();
  const cover = new Map<string, string>();
  for (const owner of new Set(tasks.map((t) => t.owner?.reference).filter(isReroutableOwner))) {
    const ownerSchedules = schedules.filter((s) => s.actor?.some((a) => a.reference === owner));
    const state = await checkAvailability(medplum, ownerSchedules, byRef.get(owner), window, log);
    availability.set(owner, state);
    const coverRef = coverage[owner];
    if (state.state === 'unavailable' && coverRef) {
      const coverState = await checkCoverAvailability(medplum, owner, coverRef, window, log);
      if (coverState.state === 'available') {
        cover.set(owner, coverRef);
      } else {
        log.info(`cover ${coverRef} for ${owner} not available (${coverState.reason}); using the pool`);
      }
    }
  }
  return {
    now: new Date(now).toISOString(),
    message: trigger.message,
    thread: trigger.thread,
    header,
    tasks,
    availability,
    cover,
  };
}

function isReroutableOwner(ref: string | undefined): ref is string {
  return REROUTABLE_OWNER_TYPES.includes(referenceType({ reference: ref }) ?? '');
}

async function checkCoverAvailability(
  medplum: MedplumClient,
  owner: string,
  coverRef: string,
  window: Interval,
  log: BotLog
): Promise<OwnerAvailability> {
  if (!isReroutableOwner(coverRef) || coverRef === owner) {
    log.warn(`OOO_COVERAGE entry for ${owner} is not another Practitioner or PractitionerRole; ignored`);
    return { state: 'unknown', reason: 'invalid-cover' };
  }
  const resources = await searchAll(medplum, 'Schedule', [
    ['actor', coverRef],
    ['_include', 'Schedule:actor'],
  ]);
  const schedules = resources.filter((r): r is WithId<Schedule> => r.resourceType === 'Schedule');
  const actor = resources.find((r) => getReferenceString(r) === coverRef);
  return checkAvailability(medplum, schedules, actor, window, log);
}

/**
 * Asks the server whether an owner has a free slot overlapping the window, over every active
 * Schedule of the owner. Available if any Schedule says so.
 * @param medplum - The client.
 * @param schedules - The owner's Schedules.
 * @param owner - The owner resource (for its time zone), when included.
 * @param window - The interval the owner must be reachable in.
 * @param log - Logger.
 * @returns The availability.
 */
async function checkAvailability(
  medplum: MedplumClient,
  schedules: WithId<Schedule>[],
  owner: Resource | undefined,
  window: Interval,
  log: BotLog
): Promise<OwnerAvailability> {
  const active = schedules.filter((s) => s.active !== false);
  if (active.length === 0) {
    return { state: 'unknown', reason: 'no-active-schedule' };
  }
  const reasons: string[] = [];
  let unknown = false;
  for (const schedule of active) {
    const result = await checkSchedule(medplum, schedule, getTimeZone(owner), window, log);
    if (result.state === 'available') {
      return result;
    }
    unknown ||= result.state === 'unknown';
    reasons.push(result.reason);
  }
  // An unreadable Schedule next to an empty one does not prove absence.
  return { state: unknown ? 'unknown' : 'unavailable', reason: reasons.join(',') };
}

async function checkSchedule(
  medplum: MedplumClient,
  schedule: WithId<Schedule>,
  timeZone: string | undefined,
  window: Interval,
  log: BotLog
): Promise<OwnerAvailability> {
  const scheduleRef = getReferenceString(schedule);
  const query = findQueryWindow(window.start, (window.end - window.start) / 60_000, getSlotGrid(schedule) ?? DEFAULT_GRID, timeZone);
  let slots: Slot[];
  try {
    const url = medplum.fhirUrl('Schedule', schedule.id as string, '$find');
    url.searchParams.set('start', new Date(query.start).toISOString());
    url.searchParams.set('end', new Date(query.end).toISOString());
    slots = slotsFromFindResponse(await medplum.get<Bundle | Parameters>(url, { cache: 'no-cache' }));
  } catch (err) {
    const status = errorStatus(err);
    if (status === 400 || status === 404) {
      log.warn(`${scheduleRef}/$find answered ${status} (${normalizeErrorString(err)}); falling back to busy-unavailable Slots`);
      return checkBlockedSlots(medplum, scheduleRef, window.start, log);
    }
    log.warn(`${scheduleRef}/$find failed: ${normalizeErrorString(err)}; availability unknown`);
    return { state: 'unknown', reason: 'find-failed' };
  }
  if (hasFreeSlotOverlapping(slots, window)) {
    return { state: 'available', reason: 'free-slot' };
  }
  // The server returns at most 20 slots, earliest first: if the cap was hit before reaching the
  // window we learned nothing about the window itself.
  const lastStart = Math.max(...slots.map((s) => Date.parse(s.start)));
  if (slots.length >= 20 && lastStart < window.start) {
    return { state: 'unknown', reason: 'find-page-cap' };
  }
  return { state: 'unavailable', reason: `no-free-slot:${scheduleRef}` };
}

/**
 * Fallback when the server has no usable `$find`: the owner is away if a `busy-unavailable`
 * Slot (a vacation block) covers now. Working hours cannot be known this way.
 * @param medplum - The client.
 * @param scheduleRef - The Schedule reference string.
 * @param now - Current instant.
 * @param log - Logger.
 * @returns The availability.
 */
async function checkBlockedSlots(
  medplum: MedplumClient,
  scheduleRef: string,
  now: number,
  log: BotLog
): Promise<OwnerAvailability> {
  try {
    const bundle = await medplum.search(
      'Slot',
      { schedule: scheduleRef, status: 'busy-unavailable', start: `le${new Date(now).toISOString()}`, _sort: '-start', _count: '100' },
      { cache: 'no-cache' }
    );
    const block = (bundle.entry ?? [])
      .map((e) => e.resource as WithId<Slot>)
      .find((slot) => Date.parse(slot.start) <= now && Date.parse(slot.end) > now);
    return block
      ? { state: 'unavailable', reason: `blocked:${getReferenceString(block)}` }
      : { state: 'available', reason: 'no-block-fallback' };
  } catch (err) {
    log.warn(`${scheduleRef}: Slot search failed: ${normalizeErrorString(err)}; availability unknown`);
    return { state: 'unknown', reason: 'slot-search-failed' };
  }
}

function errorStatus(err: unknown): number | undefined {
  const outcome = (err as { outcome?: OperationOutcome }).outcome;
  return outcome?.resourceType === 'OperationOutcome' ? getStatus(outcome) : undefined;
}

/**
 * The pure decision: which Tasks to reroute, and the version-guarded patches that do it.
 * @param facts - What the bot read.
 * @returns The decisions and the batch entries to apply.
 */
export function planReroutes(facts: RerouteFacts): ReroutePlan {
  const decisions: TaskDecision[] = [];
  const entries: BundleEntry[] = [];
  const removedRecipients = new Set<string>();
  const addedRecipients = new Set<string>();

  for (const task of facts.tasks) {
    const taskRef = getReferenceString(task);
    const owner = task.owner?.reference;
    if (!owner) {
      // A redelivery, or a retry whose first response was lost, finds its own earlier note.
      const ours = task.note?.some((n) => n.authorString === BOT_NAME && n.text?.includes(`triggered by ${facts.message};`));
      decisions.push({ task: taskRef, action: 'kept', reason: ours ? 'already rerouted for this message' : 'no owner (already in the pool)' });
      continue;
    }
    if (!isReroutableOwner(owner)) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `owner type ${referenceType(task.owner)} is not rerouted` });
      continue;
    }
    const availability = facts.availability.get(owner) ?? { state: 'unknown', reason: 'not-checked' };
    if (availability.state !== 'unavailable') {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `owner ${availability.state} (${availability.reason})` });
      continue;
    }
    const cover = facts.cover.get(owner);
    const note: Annotation = {
      time: facts.now,
      authorString: BOT_NAME,
      text:
        `Out-of-office reroute: owner ${owner} unavailable at ${facts.now} (${availability.reason}); ` +
        `triggered by ${facts.message}; ${cover ? `reassigned to ${cover}` : 'returned to the pool'}.`,
    };
    const ops: PatchOperation[] = [
      { op: 'test', path: '/owner', value: task.owner },
      cover ? { op: 'replace', path: '/owner', value: { reference: cover } } : { op: 'remove', path: '/owner' },
      { op: 'replace', path: '/status', value: 'requested' },
      task.note ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] },
      // SLA analytics read when a Task last changed from lastModified as well as from history.
      { op: 'add', path: '/lastModified', value: facts.now },
    ];
    entries.push(guardedPatchEntry(task, ops));
    removedRecipients.add(owner);
    if (cover) {
      addedRecipients.add(cover);
    }
    decisions.push({
      task: taskRef,
      owner,
      action: cover ? 'to-cover' : 'to-pool',
      reason: availability.reason,
      cover,
    });
  }

  const headerPatch = facts.header && planRecipientPatch(facts.header, removedRecipients, addedRecipients);
  if (facts.header && headerPatch) {
    entries.push(guardedPatchEntry(facts.header, headerPatch));
  }
  return { decisions, entries };
}

/**
 * Removes unavailable owners (and only them) from the thread header's recipients and adds their
 * covering providers, so the thread shows up for whoever now answers it.
 * @param header - The thread header.
 * @param remove - Owner references to remove.
 * @param add - Covering provider references to add.
 * @returns The patch operations, or undefined when nothing changes.
 */
function planRecipientPatch(header: WithId<Communication>, remove: Set<string>, add: Set<string>): PatchOperation[] | undefined {
  const current = header.recipient ?? [];
  const kept = current.filter((r) => !r.reference || !remove.has(r.reference));
  const present = new Set(kept.map((r) => r.reference));
  const next: Reference[] = [...kept, ...[...add].filter((ref) => !present.has(ref)).map((reference) => ({ reference }))];
  if (next.length === current.length && next.every((r, i) => r.reference === current[i].reference)) {
    return undefined;
  }
  if (next.length === 0) {
    return [{ op: 'remove', path: '/recipient' }];
  }
  return [{ op: header.recipient ? 'replace' : 'add', path: '/recipient', value: next }];
}

function summarize(facts: RerouteFacts, plan: ReroutePlan, failed: number): RerouteSummary {
  const rerouted = plan.decisions.filter((d) => d.action !== 'kept').length;
  return {
    outcome: failed ? 'failed' : 'done',
    thread: facts.thread,
    message: facts.message,
    tasksExamined: facts.tasks.length,
    rerouted,
    kept: plan.decisions.length - rerouted,
    failed,
    decisions: plan.decisions,
  };
}

function emptySummary(outcome: RerouteSummary['outcome']): RerouteSummary {
  return { outcome, tasksExamined: 0, rerouted: 0, kept: 0, failed: 0, decisions: [] };
}

function describeDecision(d: TaskDecision): string {
  const target = d.action === 'to-cover' ? ` -> ${d.cover}` : '';
  return `${d.task} owner=${d.owner ?? 'none'} ${d.action}${target}: ${d.reason}`;
}
