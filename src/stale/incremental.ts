// The stale bot's incremental run: read only what can have changed a decision since the runs before
// it, not the whole history of every open thread (Medplum's inbox keeps threads in progress until
// someone closes them, so open threads accumulate messages).
//
// - Threads where a patient-side message's time (`sent`, else `meta.lastUpdated`) falls inside the
//   window of silences that crossed a threshold since the look-back (STALE_LOOKBACK_HOURS wall hours,
//   for missed runs and messages stored late) or reach one now: from the longest threshold counted
//   back from the look-back's start, to the shortest counted back from now, by the clinic's clock.
// - Threads with an open reminder: to escalate, close or cancel it.
// - For those threads only: the header, the messages stored since the window opened (or since the
//   reminder's silence began), and the open Tasks; a hundred threads a search. A thread about to be
//   reminded whose unanswered run began before that is read back to the care team's last message.
//
// The decision is `planStaleRun`, the full reconcile's. Nothing is stored between runs: the reminders'
// episode identifiers make a repeated decision harmless, and the full reconcile (daily, and after any
// gap) finds what every window missed.
import type { MedplumClient } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import type { Clock } from '../lib/business-hours';
import { OPEN_TASK_STATUSES, referenceType } from '../lib/fhir';
import type { ResponseRule } from '../lib/response-rules';
import { messagePoint, senderRole } from '../lib/thread';
import { decideAndWrite } from './chunk';
import type { RunContext } from './chunk';
import { REMINDER_CODING, SILENCE_STARTED_URL } from './plan';
import { chunkFacts, MESSAGE_ELEMENTS, readAll, readChunk, THREADS_PER_CHUNK } from './reads';
import type { ReadGuard, Stop } from './reads';
import type { StaleConfig } from './settings';

const HOUR_MS = 3_600_000;
export { readChunk, THREADS_PER_CHUNK, timelineOf } from './reads';

/** What the incremental run reads: patient messages whose time is in [from, to]. */
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
 * The window of patient messages whose silence crossed a threshold within the look-back, or can now.
 *
 * The look-back is counted on the runs' side, in wall hours: a message is in the window when its
 * threshold was reached after `now - lookbackHours`, which holds every crossing since the run before
 * (and since any run missed within the look-back), whatever the clock. Counting the look-back on the
 * messages' side instead (the instant the threshold is reached now, less that many wall hours) fails
 * with business hours: across a weekend or a closed day that instant jumps back by more than the
 * look-back from one run to the next, and a message sent in the gap crosses between two runs that
 * both miss it. With the wall clock the two are the same window.
 * @param rules - Every rule in force, the default included.
 * @param clock - The clinic's clock.
 * @param now - Epoch milliseconds.
 * @param lookbackHours - STALE_LOOKBACK_HOURS: wall hours back from now in which a crossing still counts (missed runs).
 * @returns The window of message times (sent, else lastUpdated).
 */
export function silenceWindow(rules: ResponseRule[], clock: Clock, now: number, lookbackHours: number): Window {
  const thresholds = rules.map((r) => r.afterHours);
  return {
    // The longest threshold bounds every rule's: whatever crossed any threshold after the look-back's
    // start was sent after this instant (clockHoursBefore errs earlier, never later).
    from: clockHoursBefore(clock, now - lookbackHours * HOUR_MS, Math.max(...thresholds)),
    // Wall hours are at least clock hours: nothing sent later can have reached the shortest threshold.
    to: now - Math.min(...thresholds) * HOUR_MS,
  };
}

/**
 * Finds the threads to read: a patient-side message whose time is in the window, or an open reminder.
 * Time is `sent`, else `meta.lastUpdated`: messages with `sent` are found by it, those stored
 * without it by `_lastUpdated`.
 * @param medplum - The client.
 * @param window - The silence window.
 * @param reminderCode - `system|code` of reminders.
 * @param guard - Checked before each search.
 * @param log - Where a paging fallback is said.
 * @param log.warn - Warning logger.
 * @returns Thread references with, per thread, the earliest instant whose messages matter; or why reading stopped.
 */
export async function threadsToRead(
  medplum: MedplumClient,
  window: Window,
  reminderCode: string,
  guard: Pick<ReadGuard, 'check'>,
  log: { warn(message: string): void }
): Promise<Map<string, number> | Stop> {
  const since = new Map<string, number>();
  const note = (thread: string | undefined, from: number): void => {
    if (thread) {
      since.set(thread, Math.min(since.get(thread) ?? Infinity, from));
    }
  };
  const iso = (instant: number): string => new Date(instant).toISOString();
  const windows = [
    [['sent', `ge${iso(window.from)}`], ['sent', `le${iso(window.to)}`]],
    [['sent:missing', 'true'], ['_lastUpdated', `ge${iso(window.from)}`], ['_lastUpdated', `le${iso(window.to)}`]],
  ];
  for (const range of windows) {
    const messages = await readAll<Communication>(medplum, 'Communication', [...range, ['_elements', MESSAGE_ELEMENTS]], guard, log);
    if (typeof messages === 'string') {
      return messages;
    }
    for (const m of messages) {
      const time = messagePoint(m).time;
      if (time >= window.from && time <= window.to) {
        note(patientThread(m), window.from);
      }
    }
  }
  const reminders = await readAll<Task>(medplum, 'Task', { code: reminderCode, status: OPEN_TASK_STATUSES.join(','), _elements: 'focus,authoredOn,extension' }, guard, log);
  if (typeof reminders === 'string') {
    return reminders;
  }
  for (const task of reminders) {
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

/**
 * The hourly part of a run: the threads that can have changed, a hundred at a time, each chunk read,
 * decided and written before the next, so a run stopped by its deadline keeps what it decided.
 * @param medplum - The client.
 * @param config - Settings.
 * @param run - The run (guard, summary, threads decided).
 * @returns Why it stopped before the end, if it did.
 */
export async function incrementalStep(medplum: MedplumClient, config: StaleConfig, run: RunContext): Promise<Stop | undefined> {
  const window = silenceWindow([...config.rules, config.defaultRule], config.clock, run.now, config.lookbackHours);
  const threads = await threadsToRead(medplum, window, `${REMINDER_CODING.system}|${REMINDER_CODING.code}`, run.guard, run.log);
  if (typeof threads === 'string') {
    return threads;
  }
  const all = [...threads];
  for (let i = 0; i < all.length; i += THREADS_PER_CHUNK) {
    const chunk = await readChunk(medplum, all.slice(i, i + THREADS_PER_CHUNK), run.guard, run.log);
    if (typeof chunk === 'string') {
      run.summary.deferred[chunk] += all.length - i;
      return chunk;
    }
    const { stop } = await decideAndWrite(medplum, chunkFacts(chunk), config, run);
    if (stop) {
      run.summary.deferred[stop] += Math.max(0, all.length - i - THREADS_PER_CHUNK);
      return stop;
    }
  }
  return undefined;
}
