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
import type { BotLog } from '../lib/bot-runtime';
import type { Clock } from '../lib/business-hours';
import { applyWrites, OPEN_TASK_STATUSES, referenceType, scanAll, searchAll } from '../lib/fhir';
import { isQuotaError } from '../lib/quota';
import type { ResponseRule } from '../lib/response-rules';
import { senderRole } from '../lib/thread';
import { planStaleRun, REMINDER_CODING, SILENCE_STARTED_URL } from './plan';
import type { StaleFacts, StalePlan, ThreadFacts } from './plan';
import { chunkFacts, ignoredIn, lookBack, readChunk, THREADS_PER_CHUNK } from './reads';
import type { StaleConfig } from './settings';
import { addCounts, emptySummary, tally } from './summary';
import type { StaleSummary } from './summary';

const HOUR_MS = 3_600_000;
export { readChunk, THREADS_PER_CHUNK, timelineOf } from './reads';

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
 * The incremental run: the threads that can have changed, a hundred at a time, each chunk read,
 * decided and written before the next, so a run stopped by its deadline keeps what it decided.
 * @param medplum - The client.
 * @param config - Settings.
 * @param nearDeadline - Deadline check.
 * @param log - Logger.
 * @returns The summary.
 */
export async function incrementalRun(medplum: MedplumClient, config: StaleConfig, nearDeadline: () => boolean, log: BotLog): Promise<StaleSummary> {
  const summary: StaleSummary = { ...emptySummary(config), mode: 'incremental' };
  const now = Date.now();
  const window = silenceWindow([...config.rules, config.defaultRule], config.clock, now, config.lookbackHours);
  try {
    const threads = await threadsToRead(medplum, window, `${REMINDER_CODING.system}|${REMINDER_CODING.code}`, nearDeadline, log);
    if (!threads) {
      log.warn('stopped early (deadline): the deadline came while finding the threads to read; nothing written, the next run starts over');
      return { ...summary, stoppedEarly: true, stoppedBy: 'deadline' };
    }
    const all = [...threads];
    for (let i = 0; i < all.length; i += THREADS_PER_CHUNK) {
      if (nearDeadline()) {
        summary.deferred.deadline += all.length - i;
        break;
      }
      const facts = chunkFacts(await readChunk(medplum, all.slice(i, i + THREADS_PER_CHUNK)));
      const plan = await decide(medplum, facts, config, new Date(now).toISOString(), () => (nearDeadline() ? 'deadline' : undefined), summary, log);
      addCounts(summary, plan.counts);
      const outcomes = await applyWrites(
        medplum,
        plan.writes.map((w) => [w.entry]),
        { shouldStop: nearDeadline }
      );
      plan.writes.forEach((write, j) => tally(summary, write, outcomes[j][0], log));
    }
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    log.warn('stopped early (quota): the FHIR quota ran out while reading; what was decided is written, the next run goes on');
    summary.stoppedEarly = true;
    summary.stoppedBy = 'quota';
  }
  return summary;
}

/**
 * Decides a chunk: plans, looks back into the threads whose episode the read range cannot name, and
 * plans again. Threads whose look-back was stopped are left for the next run (counted as deferred).
 * @param medplum - The client.
 * @param facts - The chunk's facts (completed in place by look-backs).
 * @param config - Settings.
 * @param now - Decision instant, ISO.
 * @param canRead - Checked before each look-back search.
 * @param summary - Where deferrals are counted.
 * @param log - Logger.
 * @returns The plan.
 */
export async function decide(
  medplum: MedplumClient,
  facts: StaleFacts,
  config: StaleConfig,
  now: string,
  canRead: () => 'quota' | 'deadline' | undefined,
  summary: StaleSummary,
  log: BotLog
): Promise<StalePlan> {
  const first = planStaleRun(facts, config, now);
  if (!first.lookback.length) {
    return first;
  }
  const stuck = new Set<string>();
  let stoppedBy: 'quota' | 'deadline' | undefined;
  for (const ref of first.lookback) {
    const outcome = await lookBack(medplum, facts.threads.get(ref) as ThreadFacts, canRead);
    if (outcome === 'quota' || outcome === 'deadline') {
      stoppedBy = outcome;
      break;
    }
    if (outcome === 'stuck') {
      stuck.add(ref);
      log.warn(`${ref}: its older messages share one stored instant; the full reconcile decides it`);
    }
  }
  facts.ignoredMessages = ignoredIn(facts.threads);
  const plan = planStaleRun(facts, config, now);
  // Still unknown: the look-back was stopped before it found the episode; the next run decides them.
  summary.deferred[stoppedBy ?? 'deadline'] += plan.lookback.filter((ref) => !stuck.has(ref)).length;
  return plan;
}
