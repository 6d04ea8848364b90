// The stale bot's incremental run: read only what can have changed a decision since the runs before
// it, not the whole history of every open thread (Medplum's inbox keeps threads in progress until
// someone closes them, so open threads accumulate messages).
//
// - Threads where a patient-side message was sent inside the window in which a silence can cross a
//   threshold now: between the longest threshold (widened by a lookback that covers missed runs) and
//   the shortest, counted by the clinic's clock.
// - Threads with an open reminder: to escalate, close or cancel it.
// - For those threads only: the header, the messages since the window opened (or since the reminder's
//   silence began), and the open Tasks; a hundred threads a search.
//
// The decision is `planStaleRun`, the full scan's. Nothing is stored between runs: the reminders'
// episode identifiers make a repeated decision harmless, and a full reconcile (daily, or on request)
// finds what every window missed.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import type { Clock } from '../lib/business-hours';
import { OPEN_TASK_STATUSES, referenceType, scanAll, searchAll } from '../lib/fhir';
import type { ResponseRule } from '../lib/response-rules';
import { addToTimeline, messagePoint, senderRole } from '../lib/thread';
import type { Timeline } from '../lib/thread';

const HOUR_MS = 3_600_000;
/** Extension on a reminder: when the patient message that started its silence was sent. */
export const SILENCE_STARTED_URL = 'urn:medplum-messaging-bots:silence-started';
/** Threads per search: their ids go in the URL. */
export const THREADS_PER_CHUNK = 100;

/** What the incremental run reads: messages sent in [from, to]. */
export interface Window {
  from: number;
  to: number;
}

/**
 * The instant `hours` of the clock before `now` (wall clock: simply `now - hours`; business hours: the
 * latest instant from which at least that many open hours have passed), by bisection over the clock.
 * @param clock - Wall or business clock.
 * @param now - Epoch milliseconds.
 * @param hours - Clock hours.
 * @returns Epoch milliseconds.
 */
export function clockHoursBefore(clock: Clock, now: number, hours: number): number {
  if (clock.kind === 'wall') {
    return now - hours * HOUR_MS;
  }
  // Open hours never exceed wall hours, so the instant is at most `now - hours`; a year back bounds it.
  let latest = now - hours * HOUR_MS;
  let earliest = latest - 365 * 24 * HOUR_MS;
  if (clock.hoursBetween(earliest, now, hours) < hours) {
    return earliest;
  }
  while (latest - earliest > 60_000) {
    const mid = Math.floor((earliest + latest) / 2);
    if (clock.hoursBetween(mid, now, hours) >= hours) {
      earliest = mid;
    } else {
      latest = mid;
    }
  }
  return earliest;
}

/**
 * The window of patient messages whose silence can cross a threshold now.
 * @param rules - Every rule in force, the default included.
 * @param clock - The clinic's clock.
 * @param now - Epoch milliseconds.
 * @param lookbackHours - Wall hours added before the window for runs that were missed.
 * @returns The window of `sent` instants.
 */
export function silenceWindow(rules: ResponseRule[], clock: Clock, now: number, lookbackHours: number): Window {
  const thresholds = rules.map((r) => r.afterHours);
  return {
    from: clockHoursBefore(clock, now, Math.max(...thresholds)) - lookbackHours * HOUR_MS,
    // Wall hours are at least clock hours: nothing sent later can have reached the shortest threshold.
    to: now - Math.min(...thresholds) * HOUR_MS,
  };
}

/** One chunk of threads as read: what `planStaleRun` needs. */
export interface ChunkFacts {
  /** In-progress headers, by reference. */
  headers: Map<string, WithId<Communication>>;
  /** The threads' messages since the window (or the reminder's silence) began. */
  messages: WithId<Communication>[];
  /** Open Tasks focused on the threads. */
  tasks: WithId<Task>[];
  /** Threads of the chunk whose header is missing or not in progress. */
  closed: string[];
}

/**
 * Finds the threads to read: a patient-side message sent in the window, or an open reminder.
 * @param medplum - The client.
 * @param window - The silence window.
 * @param reminderCode - `system|code` of reminders.
 * @param nearDeadline - Deadline check.
 * @param log - Where a fallback to offset paging is said.
 * @returns Thread references with, per thread, the earliest instant whose messages matter; or undefined when the deadline stopped the search.
 */
export async function threadsToRead(
  medplum: MedplumClient,
  window: Window,
  reminderCode: string,
  nearDeadline: () => boolean,
  log: { warn(message: string): void }
): Promise<Map<string, number> | undefined> {
  const since = new Map<string, number>();
  const note = (thread: string | undefined, from: number): void => {
    if (thread) {
      since.set(thread, Math.min(since.get(thread) ?? Infinity, from));
    }
  };
  const sent = (instant: number): string => new Date(instant).toISOString();
  // Cursor paging (scanAll): a busy clinic's window can hold more messages than offset paging reaches.
  const query = [['sent', `ge${sent(window.from)}`], ['sent', `le${sent(window.to)}`], ['_elements', 'partOf,sender,sent,status']];
  const complete = await scanAll(medplum, 'Communication', query, (r) => note(patientThread(r as WithId<Communication>), window.from), { nearDeadline, log });
  if (!complete) {
    return undefined;
  }
  const reminders = await searchAll(medplum, 'Task', { code: reminderCode, status: OPEN_TASK_STATUSES.join(','), _elements: 'focus,authoredOn,extension' });
  for (const task of reminders as WithId<Task>[]) {
    if (referenceType(task.focus) === 'Communication') {
      // Messages since the silence began, which the bot's reminders record; a reminder made by hand
      // (or by an older version) does not say, so its whole thread is read.
      const started = Date.parse(task.extension?.find((e) => e.url === SILENCE_STARTED_URL)?.valueInstant ?? '');
      note(task.focus?.reference, Number.isNaN(started) ? 0 : Math.min(started, window.from));
    }
  }
  return since;
}

/**
 * Reads a chunk of threads: headers, messages since each thread's instant, open Tasks.
 * @param medplum - The client.
 * @param chunk - Thread references with the instant from which their messages matter.
 * @returns The chunk's facts.
 */
export async function readChunk(medplum: MedplumClient, chunk: [string, number][]): Promise<ChunkFacts> {
  const refs = chunk.map(([ref]) => ref);
  const headers = new Map<string, WithId<Communication>>();
  for (const h of await searchAll(medplum, 'Communication', { _id: refs.map((r) => r.split('/')[1]).join(','), _elements: 'subject,sender,sent,category,priority,status' })) {
    if ((h as Communication).status === 'in-progress') {
      headers.set(`Communication/${h.id}`, h as WithId<Communication>);
    }
  }
  const open = refs.filter((r) => headers.has(r));
  const from = Math.min(...chunk.filter(([r]) => headers.has(r)).map(([, t]) => t));
  const messages = open.length
    ? ((await searchAll(medplum, 'Communication', {
        'part-of': open.join(','),
        sent: `ge${new Date(Number.isFinite(from) ? from : 0).toISOString()}`,
        _elements: 'partOf,sender,sent,status',
      })) as WithId<Communication>[])
    : [];
  const tasks = (await searchAll(medplum, 'Task', {
    focus: refs.join(','),
    status: OPEN_TASK_STATUSES.join(','),
    _elements: 'focus,owner,code,status,priority,authoredOn,note,identifier,extension',
  })) as WithId<Task>[];
  return { headers, messages, tasks, closed: refs.filter((r) => !headers.has(r)) };
}

/**
 * A thread's timeline from the messages read (the header counts when someone wrote it and it falls
 * after the instant its messages were read from).
 * @param header - The header.
 * @param messages - Its messages read.
 * @returns The timeline and the patient-side messages' times.
 */
export function timelineOf(header: WithId<Communication>, messages: WithId<Communication>[]): { timeline: Timeline; patientTimes: Map<string, number> } {
  const timeline: Timeline = { ignored: 0 };
  const patientTimes = new Map<string, number>();
  for (const m of [...(header.sender ? [header] : []), ...messages.filter((x) => x.status !== 'entered-in-error')]) {
    const point = messagePoint(m);
    addToTimeline(timeline, point);
    if (point.role === 'patient') {
      patientTimes.set(point.ref, point.time);
    }
  }
  return { timeline, patientTimes };
}

/**
 * Whether a Communication is a patient-side message (or header) of a thread, and which thread.
 * @param c - The Communication.
 * @returns The thread reference, or undefined.
 */
export function patientThread(c: Communication & { id?: string }): string | undefined {
  if (senderRole(c.sender) !== 'patient' || c.status === 'entered-in-error') {
    return undefined;
  }
  const parent = c.partOf?.find((p) => referenceType(p) === 'Communication')?.reference;
  return parent ?? (c.partOf?.length ? undefined : `Communication/${c.id}`);
}
