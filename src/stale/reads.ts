// The stale bot's reads: what `planStaleRun` decides from, gathered with few batched searches that
// ask only for ids, references, codes and times (never message text).
//
// - A chunk of threads (a hundred a search: their ids go in the URL): headers, the messages stored
//   since an instant, the open Tasks.
// - A look-back, for a thread about to be reminded whose read range holds neither the care team's
//   last message nor the thread's start: its older messages, newest first, a page at a time, until
//   that message (or the start) is found, so the episode and its first unanswered message are named
//   right. Its cost follows the reminders created: one search each, more for a long unanswered run.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { OPEN_TASK_STATUSES, readLatest, referenceType } from '../lib/fhir';
import { readAll, UNGUARDED } from '../lib/read-guard';
import type { ReadGuard, Stop } from '../lib/read-guard';
import { threadKind } from '../lib/response-rules';
import { addToTimeline, messagePoint } from '../lib/thread';
import type { Timeline } from '../lib/thread';
import { isReminder, knowsEpisode } from './plan';
import type { StaleFacts, ThreadFacts } from './plan';

/** Threads per search: their ids go in the URL. */
export const THREADS_PER_CHUNK = 100;
/** Messages a look-back page asks for. */
export const LOOKBACK_PAGE = 100;
/** The fields of a message the decision reads. */
export const MESSAGE_ELEMENTS = 'partOf,sender,sent,status';
/** The fields of a header the decision reads. */
export const HEADER_ELEMENTS = 'subject,sender,sent,category,priority,status';
/** The fields of a Task the decision reads. */
export const TASK_ELEMENTS = 'focus,owner,code,status,priority,authoredOn,note,identifier,extension';

// The guarded reads live in src/lib/read-guard.ts (the real-time bot's sweep uses them too).
export { ReadGuard, readAll, UNGUARDED } from '../lib/read-guard';
export type { Stop } from '../lib/read-guard';

/** One chunk of threads as read: what `planStaleRun` needs. */
export interface ChunkFacts {
  /** In-progress headers, by reference. */
  headers: Map<string, WithId<Communication>>;
  /** The threads' messages stored since `readFrom`. */
  messages: WithId<Communication>[];
  /** Open Tasks focused on the threads. */
  tasks: WithId<Task>[];
  /** Threads of the chunk whose header is missing or not in progress. */
  closed: string[];
  /** Messages stored before this instant were not read (`meta.lastUpdated`: every message whose time is later was). */
  readFrom: number;
}

/**
 * Reads a chunk of threads: headers, messages stored since the earliest of the threads' instants, open Tasks.
 * @param medplum - The client.
 * @param chunk - Thread references with the instant from which their messages matter.
 * @param guard - Checked before each search.
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @returns The chunk's facts, or why reading stopped.
 */
export async function readChunk(
  medplum: MedplumClient,
  chunk: [string, number][],
  guard: Pick<ReadGuard, 'check'> = UNGUARDED,
  log: { warn(message: string): void } = { warn: () => undefined }
): Promise<ChunkFacts | Stop> {
  const refs = chunk.map(([ref]) => ref);
  const headers = new Map<string, WithId<Communication>>();
  const read = await readAll<Communication>(medplum, 'Communication', { _id: refs.map((r) => r.split('/')[1]).join(','), _elements: HEADER_ELEMENTS }, guard, log);
  if (typeof read === 'string') {
    return read;
  }
  for (const h of read) {
    if (h.status === 'in-progress') {
      headers.set(`Communication/${h.id}`, h);
    }
  }
  const open = refs.filter((r) => headers.has(r));
  const earliest = Math.min(...chunk.filter(([r]) => headers.has(r)).map(([, t]) => t));
  const from = Number.isFinite(earliest) ? earliest : 0;
  // By `_lastUpdated`: a message is stored after it is sent, so every message whose time (sent, else
  // lastUpdated) is at or after `from` is found, those stored without `sent` included.
  const messages = open.length
    ? await readAll<Communication>(medplum, 'Communication', { 'part-of': open.join(','), _lastUpdated: `ge${new Date(from).toISOString()}`, _elements: MESSAGE_ELEMENTS }, guard, log)
    : [];
  if (typeof messages === 'string') {
    return messages;
  }
  const tasks = await readAll<Task>(medplum, 'Task', { focus: refs.join(','), status: OPEN_TASK_STATUSES.join(','), _elements: TASK_ELEMENTS }, guard, log);
  if (typeof tasks === 'string') {
    return tasks;
  }
  return { headers, messages, tasks, closed: refs.filter((r) => !headers.has(r)), readFrom: from };
}

/**
 * A thread's timeline from the messages read (the header counts when someone wrote it).
 * @param header - The header.
 * @param messages - Its messages read.
 * @returns The timeline and the patient-side messages' times.
 */
export function timelineOf(header: WithId<Communication>, messages: WithId<Communication>[]): { timeline: Timeline; patientTimes: Map<string, number> } {
  const timeline: Timeline = { ignored: 0 };
  const patientTimes = new Map<string, number>();
  for (const m of [...(header.sender ? [header] : []), ...messages.filter((x) => x.status !== 'entered-in-error')]) {
    addMessage({ timeline, patientTimes }, m);
  }
  return { timeline, patientTimes };
}

/**
 * Adds a message to a thread's facts.
 * @param thread - The thread's timeline and patient times, changed in place.
 * @param thread.timeline - Its timeline.
 * @param thread.patientTimes - Its patient-side messages' times.
 * @param message - The message (not entered-in-error).
 */
function addMessage(thread: { timeline: Timeline; patientTimes?: Map<string, number> }, message: WithId<Communication>): void {
  const point = messagePoint(message);
  addToTimeline(thread.timeline, point);
  if (point.role === 'patient') {
    (thread.patientTimes ??= new Map()).set(point.ref, point.time);
  }
}

/**
 * The facts of one thread whose header was read.
 * @param header - The header.
 * @param messages - The messages read.
 * @param readFrom - Messages stored before this were not read (undefined: all were).
 * @returns The thread's facts.
 */
export function threadFacts(header: WithId<Communication>, messages: WithId<Communication>[], readFrom: number | undefined): ThreadFacts {
  const { timeline, patientTimes } = timelineOf(header, messages);
  const point = messagePoint(header);
  const sent = Date.parse(header.sent ?? '');
  return {
    ref: point.ref,
    subject: header.subject?.reference,
    kind: threadKind(header),
    header: point,
    timeline,
    patientTimes,
    readFrom: readFrom && readFrom > 0 ? readFrom : undefined,
    startedAt: Number.isNaN(sent) ? undefined : sent,
  };
}

/**
 * A chunk's facts in the shape `planStaleRun` decides from.
 * @param chunk - What readChunk found.
 * @returns The facts.
 */
export function chunkFacts(chunk: ChunkFacts): StaleFacts {
  const threads = new Map<string, ThreadFacts>();
  const byThread = new Map<string, WithId<Communication>[]>();
  for (const m of chunk.messages) {
    for (const p of m.partOf ?? []) {
      if (p.reference && chunk.headers.has(p.reference)) {
        byThread.set(p.reference, [...(byThread.get(p.reference) ?? []), m]);
      }
    }
  }
  for (const [ref, header] of chunk.headers) {
    threads.set(ref, threadFacts(header, byThread.get(ref) ?? [], chunk.readFrom));
  }
  const tasks = chunk.tasks
    .filter((t) => referenceType(t.focus) === 'Communication')
    .map((task) => ({ task, thread: task.focus?.reference as string, isReminder: isReminder(task) }));
  return {
    threads,
    openTasks: tasks.filter((t) => threads.has(t.thread)),
    orphanReminders: tasks.filter((t) => t.isReminder && !threads.has(t.thread)),
    ignoredMessages: ignoredIn(threads),
  };
}

/**
 * Messages of the threads that move no clock.
 * @param threads - The threads.
 * @returns Their count.
 */
export function ignoredIn(threads: Map<string, ThreadFacts>): number {
  return [...threads.values()].reduce((n, t) => n + t.timeline.ignored, 0);
}

/** How a look-back ended. */
export type LookBackOutcome = 'known' | 'quota' | 'deadline' | 'stuck';

/**
 * Reads a thread's older messages, newest stored first, a page at a time, until its episode is known
 * (`knowsEpisode`): the care team's last message, or the thread's start, is found. Every message
 * whose time is later than the page's oldest stored instant has been read then (a message is stored
 * after it is sent). No offset paging: each page asks for what was stored before the last one.
 * @param medplum - The client.
 * @param thread - The thread's facts, completed in place.
 * @param guard - Checked before each search.
 * @returns known; quota or deadline (stopped before it was known); stuck (a page of messages all stored
 *   at one instant it cannot page past: the full reconcile, which reads the whole thread, decides it).
 */
export async function lookBack(medplum: MedplumClient, thread: ThreadFacts, guard: Pick<ReadGuard, 'check'>): Promise<LookBackOutcome> {
  const seen = new Set<string>();
  while (!knowsEpisode(thread)) {
    const stop = guard.check();
    if (stop) {
      return stop;
    }
    const before = thread.readFrom as number;
    const page = await readLatest(
      medplum,
      'Communication',
      { 'part-of': thread.ref, _lastUpdated: `lt${new Date(before).toISOString()}`, _elements: MESSAGE_ELEMENTS },
      LOOKBACK_PAGE
    );
    let oldest = before;
    let fresh = 0;
    for (const resource of page.resources) {
      const message = resource as WithId<Communication>;
      if (seen.has(message.id)) {
        continue;
      }
      seen.add(message.id);
      fresh++;
      oldest = Math.min(oldest, Date.parse(message.meta?.lastUpdated ?? '') || oldest);
      if (message.status !== 'entered-in-error') {
        addMessage(thread, message);
      }
    }
    if (!page.more) {
      thread.readFrom = undefined; // the thread's first message was read
      return 'known';
    }
    if (!fresh) {
      return 'stuck';
    }
    // Messages stored at `oldest` may continue on the next page: ask again from just after it.
    thread.readFrom = oldest + 1;
  }
  return 'known';
}
