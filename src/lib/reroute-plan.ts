// The out-of-office decision for one thread, shared by the event path (a patient just wrote) and the
// sweep (every thread waiting on the care team). Pure: it decides from what was read and returns
// version-guarded JSON Patches; it never reads or writes.
import { getReferenceString } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Annotation, BundleEntry, Communication, Extension, Reference, Task } from '@medplum/fhirtypes';
import { guardedPatchEntry, referenceType } from './fhir';
import type { PatchOperation } from './fhir';
import { availabilityAt, describeAvailability } from './availability';
import type { Availability, OwnerFacts } from './availability';
import { isTimeZone } from './zoned-time';

/** The name the bot writes its notes under (`Annotation.authorString`). */
export const OOO_BOT_NAME = 'ooo-reroute';
/** Extension on each reroute note: who the Task was taken from, who got it, which message caused it. */
export const REROUTE_RECORD_URL = 'urn:medplum-messaging-bots:ooo-reroute';

const REROUTABLE_OWNER_TYPES = ['Practitioner', 'PractitionerRole'];
/** A Task made this long after the patient wrote was made by hand, knowing the message (an integration's opens within seconds). */
export const MADE_BY_HAND_AFTER_MS = 2 * 60_000;
/** A reroute keeps these statuses: a deliberate hold, or a Task not yet issued. */
const KEPT_STATUSES: Task['status'][] = ['draft', 'on-hold'];

/** One thread as read. */
export interface ThreadToReroute {
  /** Reference string of the thread header. */
  thread: string;
  /** The header, when it exists and could be read. */
  header?: WithId<Communication>;
  /** Open Tasks focused on the thread. */
  tasks: WithId<Task>[];
  /** The patient message the reroute answers: the event's message, or the thread's last patient message. */
  trigger?: string;
  /** When that message was sent (epoch ms); the decision replays the event at this instant. */
  triggerTime?: number;
  /**
   * When that message could first be seen: the later of its time and when it was stored (a message
   * synced late is stored after it was sent). A person's choice for the message is one made after
   * this; a Task given an owner before it was made without the message. Defaults to triggerTime.
   */
  triggerArrived?: number;
  /** When the patient began to wait: the first unanswered patient message (epoch ms), when the conversation was read. */
  waitingSince?: number;
  /** The patient side wrote last (always true on the event path). */
  waitingOnCareTeam: boolean;
  /**
   * When each Task's owner was given it, from the Task's history, per Task reference: read only for
   * a Task that would move and changed after the patient wrote, when neither the bot's notes nor
   * when the Task was made say who set its owner (see needsOwnerHistory).
   */
  ownerChanges?: ReadonlyMap<string, OwnerChange>;
}

/**
 * When a Task's current owner was given it, as its history tells: the version that made them the
 * owner, and whether the bot made it (the bot's versions add its note) or a person did. `made`: the
 * owner was set when the Task was made (`at` is then its authoredOn). `unread`: the history could
 * not be read (the quota, the deadline, a refusal): the Task is not moved this run.
 */
export type OwnerChange = { at: number; by: 'bot' | 'person'; made?: boolean } | { unread: string };

/** What was learned about the owners, for every thread of a run. */
export interface RouteFacts {
  /** Epoch milliseconds of the decision. */
  now: number;
  /** The facts of an owner (or cover), when read. */
  owner: (ref: string) => OwnerFacts | undefined;
  /** Owner reference → covering provider reference (the OOO_COVERAGE secret, validated). */
  coverage: Record<string, string>;
  /** `system|code` values: which rule sets count (the OOO_SERVICE_TYPE secret). */
  serviceTypes: string[];
  /** Tasks this run already moved (an event's retry): their header may be finished whatever its version. */
  movedThisRun?: ReadonlySet<string>;
}

/** What happened to one Task. */
export interface TaskDecision {
  task: string;
  owner?: string;
  action: 'to-pool' | 'to-cover' | 'kept';
  /** A code-like reason: ids and codes only, safe to log. */
  reason: string;
  cover?: string;
  /** Kept because the owner was on duty when the patient wrote (the routine end of a shift hands nothing off). */
  onDutyWhenWritten?: boolean;
}

/** The writes for one thread, and the decisions behind them. */
export interface ThreadPlan {
  thread: string;
  decisions: TaskDecision[];
  /** Owners of earlier reroutes still listed on the header, removed now (a half-done reroute finished). */
  repaired: string[];
  /** Task patches first, then the header patch: applied as one group. */
  entries: BundleEntry[];
}

/** The structured part of a reroute note. */
export interface RerouteRecord {
  from: string;
  to?: string;
  trigger?: string;
  /** The header's version the reroute read: the header is as the reroute left it while it still has it. */
  headerVersion?: string;
  /** Why the owner was unavailable (an AvailabilityReason code); only `absent` takes them off the thread. */
  reason?: string;
}

/**
 * Whether a reference is an owner this bot reroutes.
 * @param ref - A reference string.
 * @returns True for Practitioner and PractitionerRole.
 */
export function isReroutableOwner(ref: string | undefined): ref is string {
  return REROUTABLE_OWNER_TYPES.includes(referenceType({ reference: ref }) ?? '');
}

/**
 * Checks an `OOO_COVERAGE` value: a JSON object from a Practitioner or PractitionerRole reference
 * to another one.
 * @param value - The parsed JSON.
 * @returns The coverage, or what is wrong.
 */
export function parseCoverage(value: unknown): { coverage: Record<string, string> } | { error: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'must be a JSON object like {"Practitioner/a": "Practitioner/b"}' };
  }
  const coverage: Record<string, string> = {};
  for (const [owner, cover] of Object.entries(value)) {
    if (!isReroutableOwner(owner) || typeof cover !== 'string' || !isReroutableOwner(cover) || cover === owner) {
      return { error: `entry "${owner}" must map a Practitioner or PractitionerRole reference to another one` };
    }
    coverage[owner] = cover;
  }
  return { coverage };
}

/**
 * The latest reroute this bot recorded on a Task. Notes by versions without the record extension
 * are read from their text ("owner X unavailable ...; triggered by M; reassigned to C").
 * @param task - The Task.
 * @returns The record, or undefined.
 */
export function latestReroute(task: Task): RerouteRecord | undefined {
  const note = task.note?.filter((n) => n.authorString === OOO_BOT_NAME).at(-1);
  if (!note) {
    return undefined;
  }
  const record = note.extension?.find((e) => e.url === REROUTE_RECORD_URL);
  if (record) {
    const ref = (name: string): string | undefined => record.extension?.find((e) => e.url === name)?.valueReference?.reference;
    const from = ref('from');
    const headerVersion = record.extension?.find((e) => e.url === 'header-version')?.valueId;
    const reason = record.extension?.find((e) => e.url === 'reason')?.valueCode;
    return from ? { from, to: ref('to'), trigger: ref('trigger'), headerVersion, reason } : undefined;
  }
  const from = /owner (\S+) unavailable/.exec(note.text ?? '')?.[1];
  return from
    ? { from, to: /reassigned to (\S+?)\./.exec(note.text ?? '')?.[1], trigger: /triggered by (\S+?);/.exec(note.text ?? '')?.[1] }
    : undefined;
}

/**
 * Whether a person changed the bot's choice of owner after the patient wrote: the bot then keeps the
 * Task for that message. The server does not tell a Project's bots who wrote a resource, so it is
 * read from the bot's own notes, which say where the bot last sent the Task, from when a Task was
 * made, and, when those cannot tell, from the Task's history:
 * - a Task the bot never moved or routed, made more than two minutes after the patient's latest
 *   message (a hand-off a person made knowing it). One made within two minutes is taken as an
 *   integration's Task opened per message, and decided by availability like any other: it must not
 *   pin the message to an absent owner;
 * - a Task the bot moved or routed whose owner is no longer the bot's choice, and either the bot's
 *   note came after the patient's latest message (the change came after it too), or the bot acted
 *   within this waiting episode (after the first unanswered patient message) and the Task last
 *   changed after the latest message: a person gave it back, or passed it on, after reading it;
 * - otherwise, a Task the bot routed, changed after the latest message, whose owner is not the
 *   bot's last choice: its history says when the owner was given it, and whether by the bot (its
 *   versions add its note) or a person; a person's after the message counts (the Task's creation
 *   counts only more than two minutes after it, as above);
 * - a Task the bot never routed, changed after the latest message: its history says the same (a
 *   Task made before the message and given by hand after it is a person's choice; one only
 *   accepted or started after it kept the owner it had, and is decided by availability).
 * A choice made before the latest message (a new message while the owner is still away) is decided
 * again; so is one made in an earlier episode, whatever else was touched since.
 * @param task - An open Task with an owner.
 * @param thread - When the patient wrote (triggerTime), began to wait (waitingSince), and the
 *   owner changes read from history.
 * @returns True when the owner is a person's choice made after the message.
 */
export function assignedByPersonSince(task: WithId<Task>, thread: Pick<ThreadToReroute, 'triggerTime' | 'triggerArrived' | 'waitingSince' | 'ownerChanges'>): boolean {
  const wroteAt = arrivedAt(thread);
  if (wroteAt === undefined) {
    return false;
  }
  if (assignedByPersonFromNotes(task, wroteAt, thread.waitingSince)) {
    return true;
  }
  const change = thread.ownerChanges?.get(getReferenceString(task));
  if (!change || 'unread' in change) {
    return false;
  }
  return change.by === 'person' && change.at > wroteAt + (change.made ? MADE_BY_HAND_AFTER_MS : 0);
}

function assignedByPersonFromNotes(task: Task, wroteAt: number, waitingSince: number | undefined): boolean {
  const last = lastRouteNote(task);
  if (!last) {
    return Date.parse(task.authoredOn ?? '') > wroteAt + MADE_BY_HAND_AFTER_MS;
  }
  if (routedTo(last) === task.owner?.reference) {
    return false;
  }
  const noted = Date.parse(last.time ?? '');
  if (noted >= wroteAt) {
    return true;
  }
  return waitingSince !== undefined && noted >= waitingSince && Date.parse(task.meta?.lastUpdated ?? '') > wroteAt;
}

/**
 * When the patient's message could first be seen by a person: the later of its time and when it was
 * stored. Only a choice made after it is a choice for that message.
 * @param thread - The thread's trigger times.
 * @returns Epoch milliseconds, or undefined without a message.
 */
export function arrivedAt(thread: Pick<ThreadToReroute, 'triggerTime' | 'triggerArrived'>): number | undefined {
  const { triggerTime, triggerArrived } = thread;
  return triggerTime === undefined ? triggerArrived : Math.max(triggerTime, triggerArrived ?? triggerTime);
}

/** The bot's last note with a record (a reroute or a lifecycle route). */
function lastRouteNote(task: Task): Annotation | undefined {
  return task.note?.filter((n) => n.authorString === OOO_BOT_NAME && n.extension?.length).at(-1);
}

/** Where a route note sent the Task (undefined: the pool). */
function routedTo(note: Annotation): string | undefined {
  return note.extension?.[0]?.extension?.find((e) => e.url === 'to')?.valueReference?.reference;
}

/**
 * Whether the notes cannot tell who gave a Task its owner and its history can: the Task changed
 * after the patient's latest message (a new owner, or only a new status: the history tells which)
 * and nothing already settles who chose the owner:
 * - the bot routed the Task: only when its owner is no longer the bot's choice and the notes do not
 *   already show a person's choice;
 * - the bot never routed it: unless it was made more than two minutes after the message (a person's
 *   hand-off, kept without a read), or made within two minutes of the message and not changed since
 *   (an integration's Task opened per message, decided by availability).
 * Called only for a Task the decision would move (historyToRead), so a Task accepted after the
 * message costs one history read (10 points) only when its owner is unavailable.
 * @param task - An open Task.
 * @param thread - When the patient wrote and began to wait.
 * @returns True when the history says whether a person chose the owner after the message.
 */
export function needsOwnerHistory(task: Task, thread: Pick<ThreadToReroute, 'triggerTime' | 'triggerArrived' | 'waitingSince'>): boolean {
  const wroteAt = arrivedAt(thread);
  const owner = task.owner?.reference;
  const changed = Date.parse(task.meta?.lastUpdated ?? '');
  if (wroteAt === undefined || !isReroutableOwner(owner) || !(changed > wroteAt) || assignedByPersonFromNotes(task, wroteAt, thread.waitingSince)) {
    return false;
  }
  const last = lastRouteNote(task);
  if (last) {
    return routedTo(last) !== owner;
  }
  const made = Date.parse(task.authoredOn ?? '');
  const madeWithMessage = Math.abs(made - wroteAt) <= MADE_BY_HAND_AFTER_MS;
  return !(madeWithMessage && changed <= wroteAt + MADE_BY_HAND_AFTER_MS);
}

/**
 * The Tasks whose history a thread's decision needs: those it would move that changed after the
 * patient wrote, when the notes and when the Task was made do not tell who set its owner. Only they
 * cost a history read (10 points), so the cost follows what changed.
 * @param thread - The thread, with the owner changes already read.
 * @param route - The owners' facts (read).
 * @returns The Tasks.
 */
export function historyToRead(thread: ThreadToReroute, route: RouteFacts): WithId<Task>[] {
  if (!thread.waitingOnCareTeam) {
    return [];
  }
  const moving = new Set(planThread(thread, route).decisions.filter((d) => d.action !== 'kept').map((d) => d.task));
  return thread.tasks.filter((t) => moving.has(getReferenceString(t)) && !thread.ownerChanges?.has(getReferenceString(t)) && needsOwnerHistory(t, thread));
}

/**
 * When a Task's current owner was given it, from its history: the oldest of the latest versions
 * with that owner is the one that gave it; the bot made it when it added the bot's note (every
 * change of owner the bot makes does), a person otherwise. A history that does not reach back to
 * that change (more versions than a page since) tells only that it is at most as old as the oldest
 * version read: it is taken as a person's (the bots never undo a person).
 * @param task - The Task as decided on.
 * @param versions - Its versions as read (one page, any order).
 * @param complete - Whether the page holds every version.
 * @returns The change.
 */
export function ownerChangeOf(task: Task, versions: Task[], complete: boolean): OwnerChange {
  const time = (v: Task): number => Date.parse(v.meta?.lastUpdated ?? '') || 0;
  const newestFirst = [...versions].sort((a, b) => time(b) - time(a));
  const from = Math.max(0, newestFirst.findIndex((v) => v.meta?.versionId === task.meta?.versionId));
  const owner = task.owner?.reference;
  let k = from;
  while (k + 1 < newestFirst.length && newestFirst[k + 1].owner?.reference === owner) {
    k++;
  }
  const setter = newestFirst[k];
  const before = newestFirst[k + 1];
  if (!setter) {
    return { unread: 'no version' };
  }
  const botNotes = (v: Task | undefined): number => v?.note?.filter((n) => n.authorString === OOO_BOT_NAME).length ?? 0;
  if (before) {
    return { at: time(setter), by: botNotes(setter) > botNotes(before) ? 'bot' : 'person' };
  }
  if (!complete) {
    return { at: time(setter), by: 'person' };
  }
  // The first version: the owner was set when the Task was made.
  const made = Date.parse(setter.authoredOn ?? '');
  return { at: Number.isNaN(made) ? time(setter) : made, by: botNotes(setter) > 0 ? 'bot' : 'person', made: true };
}

/**
 * Whether an owner's Task leaves them, replaying what the event path would have decided when the
 * patient wrote: it leaves when the owner was unavailable then and is unavailable now, or when an
 * explicit absence (a busy-unavailable Slot) covers now. The routine end of a shift hands nothing off.
 * @param facts - The owner's facts.
 * @param at - When the patient wrote (epoch ms); the decision instant when unknown.
 * @param route - Decision instant and service types.
 * @returns Leave (with the availability that explains it) or stay (with why).
 */
export function handOff(
  facts: OwnerFacts | undefined,
  at: number | undefined,
  route: Pick<RouteFacts, 'now' | 'serviceTypes'>
): { leave: true; because: Availability; when: 'now' | 'written' } | { leave: false; reason: string; onDutyWhenWritten?: boolean } {
  const now = availabilityAt(facts, route.now, route.serviceTypes);
  if (now.state !== 'unavailable') {
    return { leave: false, reason: `owner ${now.state} (${now.reason})` };
  }
  if (now.reason === 'absent') {
    return { leave: true, because: now, when: 'now' };
  }
  const written = availabilityAt(facts, Math.min(at ?? route.now, route.now), route.serviceTypes);
  if (written.state === 'unavailable') {
    return { leave: true, because: written, when: 'written' };
  }
  return { leave: false, reason: `owner ${written.state} (${written.reason}) when the patient wrote; ${now.reason} now`, onDutyWhenWritten: true };
}

/**
 * Decides one thread: which Tasks go back to the pool or to a cover, and which earlier half-done
 * reroutes to finish (Task rerouted, header still listing the absent owner).
 * @param thread - The thread as read.
 * @param route - Owners' facts, coverage, the decision instant.
 * @returns The decisions and the writes.
 */
export function planThread(thread: ThreadToReroute, route: RouteFacts): ThreadPlan {
  const decisions: TaskDecision[] = [];
  const entries: BundleEntry[] = [];
  const remove = new Set<string>();
  const add = new Set<string>();
  const closed = thread.header && thread.header.status !== 'in-progress' ? thread.header.status : undefined;

  for (const task of thread.tasks) {
    const taskRef = getReferenceString(task);
    const owner = task.owner?.reference;
    if (!owner) {
      const ours = thread.trigger && latestReroute(task)?.trigger === thread.trigger;
      decisions.push({ task: taskRef, action: 'kept', reason: ours ? 'already rerouted for this message' : 'no owner (already in the pool)' });
      continue;
    }
    if (!isReroutableOwner(owner)) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `owner type ${referenceType(task.owner)} is not rerouted` });
      continue;
    }
    if (closed) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `thread is ${closed}, not in progress` });
      continue;
    }
    const earlier = latestReroute(task);
    if (thread.trigger && earlier?.from === owner && earlier.trigger === thread.trigger) {
      // Someone gave the Task back after the bot moved it for this very message: their call.
      decisions.push({ task: taskRef, owner, action: 'kept', reason: 'given back to this owner by a person after the reroute for this message' });
      continue;
    }
    if (assignedByPersonSince(task, thread)) {
      // A person chose this owner after the patient wrote, knowing the message: the bot does not
      // overrule them for it. A new patient message is decided again.
      decisions.push({ task: taskRef, owner, action: 'kept', reason: 'assigned by a person after the patient wrote' });
      continue;
    }
    const verdict = handOff(route.owner(owner), thread.triggerTime, route);
    if (!verdict.leave) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: verdict.reason, onDutyWhenWritten: verdict.onDutyWhenWritten });
      continue;
    }
    if (!thread.waitingOnCareTeam) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: 'owner unavailable, but the care team spoke last' });
      continue;
    }
    const change = thread.ownerChanges?.get(taskRef);
    if (change && 'unread' in change) {
      // Who gave it this owner after the patient wrote is unknown: the next run reads it.
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `owner changed after the patient wrote; its history not read (${change.unread})` });
      continue;
    }
    const cover = availableCover(owner, route);
    entries.push(guardedPatchEntry(task, rerouteOps(task, thread, route, { owner, because: verdict.because, when: verdict.when, cover })));
    if (takesOffThread(verdict.because, verdict.when)) {
      // An explicit absence: the thread goes to whoever answers it now. The end of a shift, or a
      // Schedule without hours, moves the work and nothing else: the provider stays on the thread.
      remove.add(owner);
      if (cover) {
        add.add(cover);
      }
    }
    decisions.push({ task: taskRef, owner, action: cover ? 'to-cover' : 'to-pool', reason: `${verdict.because.reason} ${verdict.when}`, cover });
  }

  const repaired = closed ? [] : planRepairs(thread, route, remove, add);
  const headerPatch = thread.header && recipientPatch(thread.header, remove, add);
  if (thread.header && headerPatch) {
    entries.push(guardedPatchEntry(thread.header, headerPatch));
  }
  return { thread: thread.thread, decisions, repaired, entries };
}

/**
 * Whether a hand-off also takes the owner off the thread's recipients: only an explicit absence
 * (a busy-unavailable Slot) covering now. Continuity of care matters more than a tidy recipient
 * list: off shift, the provider keeps the thread in their inbox for the next morning.
 * @param because - Why the Task leaves.
 * @param when - Whether that holds now or held when the patient wrote.
 * @returns True for an absence now.
 */
export function takesOffThread(because: Availability, when: 'now' | 'written'): boolean {
  return because.reason === 'absent' && when === 'now';
}

/**
 * The owner's configured cover, when it is another person and available now.
 * @param owner - The owner.
 * @param route - Coverage and facts.
 * @returns The cover's reference, or undefined (the pool).
 */
export function availableCover(owner: string, route: Pick<RouteFacts, 'coverage' | 'owner' | 'now' | 'serviceTypes'>): string | undefined {
  const cover = route.coverage[owner];
  if (!cover || cover === owner || !isReroutableOwner(cover)) {
    return undefined;
  }
  return availabilityAt(route.owner(cover), route.now, route.serviceTypes).state === 'available' ? cover : undefined;
}

/**
 * A time a clinician reads, in the provider's zone when known.
 * @param instant - Epoch milliseconds.
 * @param timeZone - IANA zone, when valid.
 * @returns E.g. "Nov 27, 2026, 6:05 PM (America/New_York)".
 */
export function clinicianTime(instant: number, timeZone: string | undefined): string {
  const zone = timeZone && isTimeZone(timeZone) ? timeZone : 'UTC';
  return `${new Intl.DateTimeFormat('en-US', { timeZone: zone, dateStyle: 'medium', timeStyle: 'short' }).format(instant)} (${zone})`;
}

function rerouteOps(
  task: WithId<Task>,
  thread: ThreadToReroute,
  route: RouteFacts,
  move: { owner: string; because: Availability; when: 'now' | 'written'; cover?: string }
): PatchOperation[] {
  const keepStatus = KEPT_STATUSES.includes(task.status);
  const now = new Date(route.now).toISOString();
  const ownerFacts = route.owner(move.owner);
  const who = ownerFacts?.name ?? 'The assigned provider';
  const record: Extension = {
    url: REROUTE_RECORD_URL,
    extension: [
      { url: 'from', valueReference: { reference: move.owner } },
      ...(move.cover ? [{ url: 'to', valueReference: { reference: move.cover } }] : []),
      ...(thread.trigger ? [{ url: 'trigger', valueReference: { reference: thread.trigger } }] : []),
      ...(thread.header?.meta?.versionId ? [{ url: 'header-version', valueId: thread.header.meta.versionId }] : []),
      { url: 'reason', valueCode: move.because.reason },
    ],
  };
  const wrote = thread.triggerTime ?? route.now;
  const why =
    move.when === 'now'
      ? `${who} is ${describeAvailability(move.because)}`
      : `${who} was ${describeAvailability(move.because)} when the patient wrote (${clinicianTime(wrote, ownerFacts?.timeZone)})`;
  const target = move.cover ? `Reassigned to ${route.owner(move.cover)?.name ?? 'the covering provider'}, who covers for them` : 'Returned to the team pool';
  const note: Annotation = {
    time: now,
    authorString: OOO_BOT_NAME,
    text: `${target}: ${why}.${keepStatus ? ` The Task stays ${task.status === 'on-hold' ? 'on hold' : 'a draft'} as it was.` : ''}`,
    extension: [record],
  };
  return [
    { op: 'test', path: '/owner', value: task.owner },
    move.cover ? { op: 'replace', path: '/owner', value: { reference: move.cover } } : { op: 'remove', path: '/owner' },
    ...(keepStatus ? [] : [{ op: 'replace' as const, path: '/status', value: 'requested' }]),
    task.note ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] },
    // SLA analytics read when a Task last changed from lastModified as well as from history.
    { op: 'add', path: '/lastModified', value: now },
  ];
}

/**
 * Finishes earlier reroutes whose header patch did not apply (a 429 or a conflict on that entry):
 * the Task was taken from an absent owner who is still listed on the header. Only for a reroute made
 * for an absence, while the patient is still waiting, the header is as the reroute left it (the
 * version its record names, or this run's own move), the owner is still absent and owns no other
 * open Task of the thread; the cover, when it holds the Task, is added. A reroute at the end of a
 * shift never touched the header, so there is nothing to finish.
 * @param thread - The thread.
 * @param route - Facts.
 * @param remove - Recipients to remove (added to).
 * @param add - Recipients to add (added to).
 * @returns The owners removed this way.
 */
function planRepairs(thread: ThreadToReroute, route: RouteFacts, remove: Set<string>, add: Set<string>): string[] {
  if (!thread.waitingOnCareTeam || !thread.header) {
    return [];
  }
  const listed = new Set((thread.header.recipient ?? []).map((r) => r.reference));
  const stillOwning = new Set(thread.tasks.map((t) => t.owner?.reference).filter((o) => o && !remove.has(o)));
  const repaired: string[] = [];
  for (const task of thread.tasks) {
    const record = latestReroute(task);
    const untouched = record && (route.movedThisRun?.has(getReferenceString(task)) || (!!record.headerVersion && record.headerVersion === thread.header.meta?.versionId));
    if (
      !record ||
      record.reason !== 'absent' ||
      !untouched ||
      remove.has(record.from) ||
      !listed.has(record.from) ||
      stillOwning.has(record.from) ||
      availabilityAt(route.owner(record.from), route.now, route.serviceTypes).reason !== 'absent'
    ) {
      continue;
    }
    remove.add(record.from);
    repaired.push(record.from);
    if (record.to && task.owner?.reference === record.to) {
      add.add(record.to);
    }
  }
  return repaired;
}

/**
 * Removes absent owners (and only them) from the header's recipients and adds their covers, so
 * the thread shows up for whoever now answers it. Off-shift owners are never passed here.
 * @param header - The thread header.
 * @param remove - Recipients to remove.
 * @param add - Recipients to add.
 * @returns The patch operations, or undefined when nothing changes.
 */
function recipientPatch(header: WithId<Communication>, remove: Set<string>, add: Set<string>): PatchOperation[] | undefined {
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

/**
 * Owners whose facts a thread's decision needs: the current owners this bot reroutes, the owners
 * of earlier absence reroutes still listed on a header the reroute left as it was (a repair may
 * finish them), and the owners' configured covers. An off-shift reroute leaves its owner on the
 * header on purpose, and a header changed since the reroute (the reroute's own patch applied, then
 * a person listed the owner again) is a person's choice no repair undoes: a follow-up after either
 * reads no Schedule for them.
 * @param thread - The thread.
 * @param coverage - Owner → cover.
 * @param movedThisRun - Tasks this run already moved (their header may be finished whatever its version).
 * @returns Owner reference strings.
 */
export function ownersToCheck(thread: ThreadToReroute, coverage: Record<string, string> = {}, movedThisRun?: ReadonlySet<string>): string[] {
  const listed = new Set((thread.header?.recipient ?? []).map((r) => r.reference));
  const owners = thread.tasks.map((t) => t.owner?.reference).filter(isReroutableOwner);
  const version = thread.header?.meta?.versionId;
  // Only an absence reroute can be left half-done (it is the only one that writes the header), and
  // planRepairs finishes it only on the header version it read.
  const changedSince = (t: WithId<Task>, r: RerouteRecord): boolean =>
    !movedThisRun?.has(getReferenceString(t)) && r.headerVersion !== undefined && r.headerVersion !== version;
  const earlier = thread.tasks.flatMap((t) => {
    const r = latestReroute(t);
    return r && r.reason === 'absent' && listed.has(r.from) && isReroutableOwner(r.from) && !changedSince(t, r) ? [r.from] : [];
  });
  const covers = owners.map((o) => coverage[o]).filter(isReroutableOwner);
  return [...new Set([...owners, ...earlier, ...covers])];
}
