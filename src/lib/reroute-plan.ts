// The out-of-office decision for one thread, shared by the event path (a patient just wrote) and the
// sweep (every thread waiting on the care team). Pure: it decides from what was read and returns
// version-guarded JSON Patches; it never reads or writes.
import { getReferenceString } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Annotation, BundleEntry, Communication, Extension, Reference, Task } from '@medplum/fhirtypes';
import { guardedPatchEntry, referenceType } from './fhir';
import type { PatchOperation } from './fhir';
import type { OwnerAvailability } from './owner-availability';

/** The name the bot writes its notes under (`Annotation.authorString`). */
export const OOO_BOT_NAME = 'ooo-reroute';
/** Extension on each reroute note: who the Task was taken from, who got it, which message caused it. */
export const REROUTE_RECORD_URL = 'urn:medplum-messaging-bots:ooo-reroute';

const REROUTABLE_OWNER_TYPES = ['Practitioner', 'PractitionerRole'];
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
  /** The patient side wrote last (always true on the event path). */
  waitingOnCareTeam: boolean;
}

/** What was learned about the owners, for every thread of a run. */
export interface OwnerFacts {
  now: string;
  /** Availability per owner reference string. */
  availability: Map<string, OwnerAvailability>;
  /** An available covering provider per unavailable owner. */
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
    return from ? { from, to: ref('to'), trigger: ref('trigger') } : undefined;
  }
  const from = /owner (\S+) unavailable/.exec(note.text ?? '')?.[1];
  return from
    ? { from, to: /reassigned to (\S+?)\./.exec(note.text ?? '')?.[1], trigger: /triggered by (\S+?);/.exec(note.text ?? '')?.[1] }
    : undefined;
}

/**
 * Decides one thread: which Tasks go back to the pool or to a cover, and which earlier half-done
 * reroutes to finish (Task rerouted, header still listing the absent owner).
 * @param thread - The thread as read.
 * @param owners - Availability and covers.
 * @returns The decisions and the writes.
 */
export function planThread(thread: ThreadToReroute, owners: OwnerFacts): ThreadPlan {
  const decisions: TaskDecision[] = [];
  const entries: BundleEntry[] = [];
  const remove = new Set<string>();
  const add = new Set<string>();

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
    const availability = owners.availability.get(owner) ?? { state: 'unknown', reason: 'not-checked' };
    if (availability.state !== 'unavailable') {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: `owner ${availability.state} (${availability.reason})` });
      continue;
    }
    if (!thread.waitingOnCareTeam) {
      decisions.push({ task: taskRef, owner, action: 'kept', reason: 'owner unavailable, but the care team spoke last' });
      continue;
    }
    const cover = owners.cover.get(owner);
    entries.push(guardedPatchEntry(task, rerouteOps(task, owner, availability, cover, thread.trigger, owners.now)));
    remove.add(owner);
    if (cover) {
      add.add(cover);
    }
    decisions.push({ task: taskRef, owner, action: cover ? 'to-cover' : 'to-pool', reason: availability.reason, cover });
  }

  const repaired = planRepairs(thread, owners, remove, add);
  const headerPatch = thread.header && recipientPatch(thread.header, remove, add);
  if (thread.header && headerPatch) {
    entries.push(guardedPatchEntry(thread.header, headerPatch));
  }
  return { thread: thread.thread, decisions, repaired, entries };
}

function rerouteOps(
  task: WithId<Task>,
  owner: string,
  availability: OwnerAvailability,
  cover: string | undefined,
  trigger: string | undefined,
  now: string
): PatchOperation[] {
  const keepStatus = KEPT_STATUSES.includes(task.status);
  const record: Extension = {
    url: REROUTE_RECORD_URL,
    extension: [
      { url: 'from', valueReference: { reference: owner } },
      ...(cover ? [{ url: 'to', valueReference: { reference: cover } }] : []),
      ...(trigger ? [{ url: 'trigger', valueReference: { reference: trigger } }] : []),
    ],
  };
  const note: Annotation = {
    time: now,
    authorString: OOO_BOT_NAME,
    text:
      `Out-of-office reroute: owner ${owner} unavailable at ${now} (${availability.reason}); ` +
      `triggered by ${trigger ?? 'the out-of-office sweep'}; ${cover ? `reassigned to ${cover}` : 'returned to the pool'}` +
      `${keepStatus ? `; status ${task.status} kept` : ''}.`,
    extension: [record],
  };
  return [
    { op: 'test', path: '/owner', value: task.owner },
    cover ? { op: 'replace', path: '/owner', value: { reference: cover } } : { op: 'remove', path: '/owner' },
    ...(keepStatus ? [] : [{ op: 'replace' as const, path: '/status', value: 'requested' }]),
    task.note ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] },
    // SLA analytics read when a Task last changed from lastModified as well as from history.
    { op: 'add', path: '/lastModified', value: now },
  ];
}

/**
 * Finishes earlier reroutes whose header patch did not apply (a 429 or a conflict on that entry):
 * the Task was taken from an owner who is still listed on the header. The owner is removed only
 * while still unavailable and owning no other open Task of the thread; the cover, when it holds the
 * Task, is added.
 * @param thread - The thread.
 * @param owners - Availability.
 * @param remove - Recipients to remove (added to).
 * @param add - Recipients to add (added to).
 * @returns The owners removed this way.
 */
function planRepairs(thread: ThreadToReroute, owners: OwnerFacts, remove: Set<string>, add: Set<string>): string[] {
  const listed = new Set((thread.header?.recipient ?? []).map((r) => r.reference));
  const stillOwning = new Set(thread.tasks.map((t) => t.owner?.reference).filter((o) => o && !remove.has(o)));
  const repaired: string[] = [];
  for (const task of thread.tasks) {
    const record = latestReroute(task);
    if (
      !record ||
      remove.has(record.from) ||
      !listed.has(record.from) ||
      stillOwning.has(record.from) ||
      owners.availability.get(record.from)?.state !== 'unavailable'
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
 * the thread shows up for whoever now answers it.
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
 * Owners whose availability a thread's decision needs: the current owners this bot reroutes, and
 * the owners of earlier reroutes still listed on the header.
 * @param thread - The thread.
 * @returns Owner reference strings.
 */
export function ownersToCheck(thread: ThreadToReroute): string[] {
  const listed = new Set((thread.header?.recipient ?? []).map((r) => r.reference));
  const owners = thread.tasks.map((t) => t.owner?.reference).filter(isReroutableOwner);
  const earlier = thread.tasks
    .map((t) => latestReroute(t))
    .flatMap((r) => (r && listed.has(r.from) && isReroutableOwner(r.from) ? [r.from] : []));
  return [...new Set([...owners, ...earlier])];
}
