// Stale-thread reminders bot (cron).
//
// Finds open threads where a patient waits on the care team (the first patient-side message after
// the care team last spoke, or since the thread began, follow-ups never restarting that clock) longer
// than the clinic's response rules allow, and creates one reminder Task per waiting episode.
// Escalates reminders left unanswered, completes those the care team answered, and cancels those
// whose thread was closed.
//
// Two ways to gather the facts, one decision (src/stale/plan.ts):
// - incremental (the cron's runs): only threads where a patient's silence can cross a threshold now,
//   and threads with an open reminder, a hundred at a time (src/stale/incremental.ts); its cost follows
//   what changed, not the history of every open thread;
// - full reconcile (daily at STALE_FULL_RECONCILE_HOUR, or `$execute` by hand): three paged scans of
//   ids, references and times (thread headers, their messages, open Tasks).
// Batches of conditional or version-guarded writes apply the plan, never starting what the quota left
// this minute cannot cover. Every write is idempotent, so the next run finishes whatever this one left.
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type { Communication } from '@medplum/fhirtypes';
import { createBotLog, runTimeoutMs } from './lib/bot-runtime';
import type { BotLog } from './lib/bot-runtime';
import { applyWrites, referenceType, scanAll, scanOpenThreadTasks } from './lib/fhir';
import { isQuotaError } from './lib/quota';
import { threadKind } from './lib/response-rules';
import { addToTimeline, messagePoint } from './lib/thread';
import type { Timeline } from './lib/thread';
import { incrementalRun } from './stale/incremental';
import { BOT_NAME, isReminder, planStaleRun } from './stale/plan';
import type { OpenTaskFacts, StaleFacts, ThreadFacts } from './stale/plan';
import { readStaleConfig } from './stale/settings';
import { emptySummary, finish, tally } from './stale/summary';
import type { StaleSummary } from './stale/summary';

export { EPISODE_SYSTEM, episodeValue, knowsEpisode, legacyEpisodeValues, planStaleRun, REMINDER_CODING, SILENCE_STARTED_URL, silenceStarted } from './stale/plan';
export type { OpenTaskFacts, PlanCounts, PlannedWrite, StaleFacts, StalePlan, ThreadFacts } from './stale/plan';
export { readStaleConfig } from './stale/settings';
export type { StaleConfig } from './stale/settings';
export type { StaleSummary } from './stale/summary';

/**
 * Stale-thread reminders: one reminder Task per silent thread and silence episode, escalation of
 * unanswered reminders, closing of answered ones.
 *
 * Secrets: `STALE_RULES` (per category and priority), `STALE_AFTER_HOURS` (72) and
 * `ESCALATE_AFTER_HOURS` (24) for threads no rule matches, `BUSINESS_HOURS` (count open hours only),
 * `BOT_TIMEOUT_SECONDS` (10; setup applies it as the Bot's `timeout`; a lower `timeout` on the Bot wins).
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - The cron event; its input is ignored.
 * @returns A summary with counts. A run whose writes failed throws, with the summary on the error.
 */
export async function handler(medplum: MedplumClient, event: BotEvent): Promise<StaleSummary> {
  const startedAt = Date.now();
  const log = createBotLog(BOT_NAME);
  const config = readStaleConfig(event, log);
  const timeoutMs = runTimeoutMs(event, log);
  // Stop starting new work with a margin of 20% of the timeout (at least 2 s).
  const stopAt = startedAt + timeoutMs - Math.max(2000, timeoutMs * 0.2);
  const nearDeadline = (): boolean => Date.now() >= stopAt;

  const mode = runMode(event.input, startedAt, config.fullReconcileHour);
  if (mode === 'incremental') {
    return finish(await incrementalRun(medplum, config, nearDeadline, log), log);
  }
  let facts: StaleFacts | undefined;
  try {
    facts = await gatherFacts(medplum, nearDeadline, log);
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    // The quota refusing a read is no failure of the run: nothing was written, the next run reads again.
    log.warn('stopped early (quota): the FHIR quota ran out while reading; nothing written, the next run starts over');
    return { ...emptySummary(config), stoppedEarly: true, stoppedBy: 'quota' };
  }
  if (!facts) {
    log.warn('stopped early (deadline): the deadline came while reading; nothing written, the next run starts over');
    return { ...emptySummary(config), stoppedEarly: true, stoppedBy: 'deadline' };
  }
  const plan = planStaleRun(facts, config, new Date().toISOString());
  const outcomes = await applyWrites(
    medplum,
    plan.writes.map((w) => [w.entry]),
    { shouldStop: nearDeadline }
  );

  const summary: StaleSummary = { ...emptySummary(config), ...plan.counts };
  plan.writes.forEach((write, i) => tally(summary, write, outcomes[i][0], log));
  return finish(summary, log);
}

/**
 * Which kind of run an input asks for: `{"full": true}` a full reconcile, `{"full": false}` an
 * incremental run; the cron's input (the Bot)
 * an incremental run, except in the full-reconcile hour; an `$execute` by hand (an empty body) a full
 * reconcile, so that an admin who runs the bot gets the thorough answer.
 * @param input - `event.input`.
 * @param now - Epoch milliseconds.
 * @param fullHour - The UTC hour of the daily full reconcile.
 * @returns The mode.
 */
export function runMode(input: unknown, now: number, fullHour: number): 'incremental' | 'full' {
  const value = input as { resourceType?: string; full?: unknown } | undefined;
  if (typeof value?.full === 'boolean') {
    return value.full ? 'full' : 'incremental';
  }
  const cron = value?.resourceType === 'Bot' || value?.resourceType === 'Cron';
  return cron && new Date(now).getUTCHours() !== fullHour ? 'incremental' : 'full';
}

async function gatherFacts(medplum: MedplumClient, nearDeadline: () => boolean, log: BotLog): Promise<StaleFacts | undefined> {
  const threads = new Map<string, ThreadFacts>();
  const options = { nearDeadline, log };
  // Visits must be idempotent: a scan may be read again from the start (see scanAll).
  const headersRead = await scanAll(
    medplum,
    'Communication',
    { 'part-of:missing': 'true', status: 'in-progress', _elements: 'subject,sender,sent,category,priority' },
    (r) => {
      const header = r as WithId<Communication>;
      const point = messagePoint(header);
      const timeline: Timeline = { ignored: 0 };
      if (header.sender) {
        addToTimeline(timeline, point);
      }
      const patientTimes = point.role === 'patient' ? new Map([[point.ref, point.time]]) : undefined;
      threads.set(point.ref, { ref: point.ref, subject: header.subject?.reference, kind: threadKind(header), header: point, timeline, patientTimes });
    },
    options
  );
  const seenMessages = new Set<string>();
  const messagesRead =
    headersRead &&
    (await scanAll(
      medplum,
      'Communication',
      { 'part-of:Communication.status': 'in-progress', _elements: 'partOf,sender,sent,status' },
      (r) => {
        const message = r as WithId<Communication>;
        const thread = threads.get(message.partOf?.find((p) => referenceType(p) === 'Communication')?.reference ?? '');
        if (!thread || message.status === 'entered-in-error' || seenMessages.has(message.id)) {
          return;
        }
        seenMessages.add(message.id);
        const point = messagePoint(message);
        addToTimeline(thread.timeline, point);
        if (point.role === 'patient') {
          (thread.patientTimes ??= new Map()).set(point.ref, point.time);
        }
      },
      options
    ));
  const openTasks = new Map<string, OpenTaskFacts>();
  const tasksRead =
    messagesRead &&
    (await scanOpenThreadTasks(
      medplum,
      'focus,owner,code,status,priority,authoredOn,note,identifier,extension',
      (task, thread) => {
        const reminder = isReminder(task);
        if (threads.has(thread) || reminder) {
          openTasks.set(task.id, { task, thread, isReminder: reminder });
        }
      },
      options
    ));
  if (!tasksRead) {
    return undefined;
  }
  const all = [...openTasks.values()];
  return {
    threads,
    openTasks: all.filter((t) => threads.has(t.thread)),
    orphanReminders: all.filter((t) => t.isReminder && !threads.has(t.thread)),
    ignoredMessages: [...threads.values()].reduce((n, t) => n + t.timeline.ignored, 0),
  };
}

