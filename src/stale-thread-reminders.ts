// Stale-thread reminders bot (cron).
//
// Finds open threads where the patient wrote last and no person of the care team answered within the
// clinic's response rules, and creates one reminder Task per silence episode. Escalates reminders left
// unanswered, completes those the care team answered, and cancels those whose thread was closed.
//
// Two ways to gather the facts, one decision:
// - incremental (the cron's runs): only threads where a patient's silence can cross a threshold now,
//   and threads with an open reminder, a hundred at a time (src/stale/incremental.ts); its cost follows
//   what changed, not the history of every open thread;
// - full reconcile (daily at STALE_FULL_RECONCILE_HOUR, or `$execute` by hand): three paged scans of
//   ids, references and times (thread headers, their messages, open Tasks).
// A pure function (`planStaleRun`) decides; batches of conditional or version-guarded writes apply
// it, never starting what the quota left this minute cannot cover. Every write is idempotent, so the
// next run finishes whatever this one left.
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type { BundleEntry, Communication, Task } from '@medplum/fhirtypes';
import { readChunk, SILENCE_STARTED_URL, silenceWindow, THREADS_PER_CHUNK, threadsToRead, timelineOf } from './stale/incremental';
import { createBotLog, readJsonSecret, readNumberSecret, readStringSecret, RunFailedError, runTimeoutMs } from './lib/bot-runtime';
import type { BotLog } from './lib/bot-runtime';
import { businessClock, parseBusinessHours, parseHourOfDay, WALL_CLOCK } from './lib/business-hours';
import type { Clock } from './lib/business-hours';
import { applyWrites, guardedPatchEntry, referenceType, scanAll, scanOpenThreadTasks } from './lib/fhir';
import { isQuotaError } from './lib/quota';
import type { PatchOperation, WriteOutcome } from './lib/fhir';
import { describeRule, matchRule, parseResponseRules, PRIORITIES, threadKind } from './lib/response-rules';
import type { Priority, ResponseRule, ThreadKind } from './lib/response-rules';
import { addToTimeline, messagePoint } from './lib/thread';
import type { MessagePoint, Timeline } from './lib/thread';

const BOT_NAME = 'stale-thread-reminders';
const HOUR_MS = 3_600_000;

/** The reminder Task code. */
export const REMINDER_CODING = { system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' };
/** Identifier system of a reminder's silence episode: value `<thread id>:<last patient message id>`. */
export const EPISODE_SYSTEM = 'urn:medplum-messaging-bots:stale-thread-episode';
export { SILENCE_STARTED_URL } from './stale/incremental';

/** Settings, from Bot secrets. */
export interface StaleConfig {
  /** STALE_RULES, first match wins. */
  rules: ResponseRule[];
  /** STALE_AFTER_HOURS / ESCALATE_AFTER_HOURS: for threads no rule matches. */
  defaultRule: ResponseRule;
  /** BUSINESS_HOURS when set, else every hour counts. */
  clock: Clock;
  /** STALE_LOOKBACK_HOURS: how far an incremental run looks back beyond the longest threshold, for missed runs. */
  lookbackHours: number;
  /** STALE_FULL_RECONCILE_HOUR: the UTC hour whose cron run is a full reconcile. */
  fullReconcileHour: number;
}

/** An open thread reduced to what decisions need. */
export interface ThreadFacts {
  ref: string;
  subject?: string;
  kind: ThreadKind;
  /** The header, the thread's first message when it has a sender. */
  header: MessagePoint;
  timeline: Timeline;
  /** When each patient-side message was sent, by reference: where a reminder's silence began. */
  patientTimes?: Map<string, number>;
}

/** An open Task on a thread (or on a thread no longer open), reduced to what decisions need. */
export interface OpenTaskFacts {
  task: WithId<Task>;
  thread: string;
  isReminder: boolean;
}

/** What the scans found. */
export interface StaleFacts {
  threads: Map<string, ThreadFacts>;
  /** Open Tasks on open threads. */
  openTasks: OpenTaskFacts[];
  /** Open reminders whose thread is not in progress any more (closed or deleted). */
  orphanReminders: OpenTaskFacts[];
  /** Messages of open threads that move no clock: automated, or without a usable sender. */
  ignoredMessages: number;
}

/** A write the run wants to make, with what it is for. */
export interface PlannedWrite {
  kind: 'create' | 'escalate' | 'close' | 'cancel';
  thread: string;
  entry: BundleEntry;
}

/** Counts of what the decision found. */
export interface PlanCounts {
  threadsRead: number;
  stale: number;
  alreadyReminded: number;
  skipped: { noSubject: number; recent: number; careTeamLast: number; noPersonMessage: number };
  ignoredMessages: number;
  /** Threads decided by each rule (`default`, `rule 1`...). */
  byRule: Record<string, number>;
}

/** What a run did. */
export interface StaleSummary extends PlanCounts {
  created: number;
  /** Conditional creates that found the episode's reminder already there (a completed one, or an overlapping run's). */
  episodeExists: number;
  escalated: number;
  closed: number;
  /** Reminders cancelled because their thread was closed. */
  cancelled: number;
  /** Version-guarded patches whose resource changed meanwhile; the next run decides again. */
  conflicts: number;
  failed: number;
  /** Writes left for the next run: the quota left this minute could not cover them, or the deadline was near. */
  deferred: { quota: number; deadline: number };
  stoppedEarly: boolean;
  /** Why the run stopped before writing anything, when it did. */
  stoppedBy?: 'quota' | 'deadline';
  clock: 'wall' | 'business';
  /** incremental (the cron's runs) or full (a reconcile). */
  mode: 'incremental' | 'full';
}

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

/**
 * The incremental run: the threads that can have changed, a hundred at a time, each chunk read,
 * decided and written before the next, so a run stopped by its deadline keeps what it decided.
 * @param medplum - The client.
 * @param config - Settings.
 * @param nearDeadline - Deadline check.
 * @param log - Logger.
 * @returns The summary.
 */
async function incrementalRun(medplum: MedplumClient, config: StaleConfig, nearDeadline: () => boolean, log: BotLog): Promise<StaleSummary> {
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
      const chunk = await readChunk(medplum, all.slice(i, i + THREADS_PER_CHUNK));
      const plan = planStaleRun(chunkFacts(chunk), config, new Date(now).toISOString());
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
 * A chunk's facts in the shape `planStaleRun` decides from.
 * @param chunk - What readChunk found.
 * @returns The facts.
 */
function chunkFacts(chunk: Awaited<ReturnType<typeof readChunk>>): StaleFacts {
  const threads = new Map<string, ThreadFacts>();
  let ignoredMessages = 0;
  for (const [ref, header] of chunk.headers) {
    const mine = chunk.messages.filter((m) => m.partOf?.some((p) => p.reference === ref));
    const { timeline, patientTimes } = timelineOf(header, mine);
    ignoredMessages += timeline.ignored;
    threads.set(ref, { ref, subject: header.subject?.reference, kind: threadKind(header), header: messagePoint(header), timeline, patientTimes });
  }
  const tasks = chunk.tasks
    .filter((t) => referenceType(t.focus) === 'Communication')
    .map((task) => ({ task, thread: task.focus?.reference as string, isReminder: isReminder(task) }));
  return {
    threads,
    openTasks: tasks.filter((t) => threads.has(t.thread)),
    orphanReminders: tasks.filter((t) => t.isReminder && !threads.has(t.thread)),
    ignoredMessages,
  };
}

function isReminder(task: Task): boolean {
  return !!task.code?.coding?.some((c) => c.system === REMINDER_CODING.system && c.code === REMINDER_CODING.code);
}

function addCounts(summary: StaleSummary, counts: PlanCounts): void {
  summary.threadsRead += counts.threadsRead;
  summary.stale += counts.stale;
  summary.alreadyReminded += counts.alreadyReminded;
  summary.ignoredMessages += counts.ignoredMessages;
  for (const key of Object.keys(counts.skipped) as (keyof PlanCounts['skipped'])[]) {
    summary.skipped[key] += counts.skipped[key];
  }
  for (const [rule, n] of Object.entries(counts.byRule)) {
    summary.byRule[rule] = (summary.byRule[rule] ?? 0) + n;
  }
}

/**
 * Logs a run's summary line and fails the run when writes failed.
 * @param summary - The run's summary.
 * @param log - Logger.
 * @returns The summary.
 */
function finish(summary: StaleSummary, log: BotLog): StaleSummary {
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  summary.stoppedEarly ||= deferred > 0;
  if (deferred) {
    log.warn(`${deferred} write(s) or thread(s) left for the next run (quota: ${summary.deferred.quota}, deadline: ${summary.deferred.deadline})`);
  }
  log.info(
    `threads=${summary.threadsRead} stale=${summary.stale} created=${summary.created} episodeExists=${summary.episodeExists} ` +
      `alreadyReminded=${summary.alreadyReminded} escalated=${summary.escalated} closed=${summary.closed} cancelled=${summary.cancelled} ` +
      `skipped=${JSON.stringify(summary.skipped)} ignoredMessages=${summary.ignoredMessages} byRule=${JSON.stringify(summary.byRule)} ` +
      `clock=${summary.clock} mode=${summary.mode} conflicts=${summary.conflicts} failed=${summary.failed} deferred=${JSON.stringify(summary.deferred)}`
  );
  if (summary.failed) {
    throw new RunFailedError(`${BOT_NAME}: ${summary.failed} write(s) failed; the next run retries them`, summary);
  }
  return summary;
}

/**
 * Reads the bot's settings; malformed rules or hours are logged once and the defaults used.
 * @param event - The bot event.
 * @param log - Logger.
 * @returns The settings.
 */
export function readStaleConfig(event: BotEvent, log: BotLog): StaleConfig {
  const afterHours = readNumberSecret(event, 'STALE_AFTER_HOURS', 72, log);
  const escalateAfterHours = readNumberSecret(event, 'ESCALATE_AFTER_HOURS', 24, log);
  const defaultRule: ResponseRule = { index: 0, afterHours, escalateAfterHours, reminderPriority: 'urgent' };
  const rules = readJsonSecret(event, 'STALE_RULES', (v) => parseResponseRules(v, { escalateAfterHours }), log);
  const hours = readJsonSecret(event, 'BUSINESS_HOURS', parseBusinessHours, log);
  const hour = readStringSecret(event, 'STALE_FULL_RECONCILE_HOUR', parseHourOfDay, log)?.hour ?? 3;
  return {
    rules: rules && 'rules' in rules ? rules.rules : [],
    defaultRule,
    clock: hours && 'hours' in hours ? businessClock(hours.hours) : WALL_CLOCK,
    lookbackHours: readNumberSecret(event, 'STALE_LOOKBACK_HOURS', 24, log),
    fullReconcileHour: hour,
  };
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

/**
 * The pure decision of a run: reminders to create, escalate, close and cancel.
 * @param facts - What the scans found.
 * @param config - Rules, defaults and clock.
 * @param now - Current time, ISO.
 * @returns The writes, in the order to make them (oldest silence first, then escalations, closes,
 *   cancellations: what matters most to patients is spent first when the quota runs short), and counts.
 */
export function planStaleRun(facts: StaleFacts, config: StaleConfig, now: string): { writes: PlannedWrite[]; counts: PlanCounts } {
  const nowMs = Date.parse(now);
  const counts: PlanCounts = {
    threadsRead: facts.threads.size,
    stale: 0,
    alreadyReminded: 0,
    skipped: { noSubject: 0, recent: 0, careTeamLast: 0, noPersonMessage: 0 },
    ignoredMessages: facts.ignoredMessages,
    byRule: {},
  };
  const creates: (PlannedWrite & { silentSince: number })[] = [];
  const closes: PlannedWrite[] = [];
  const escalations: PlannedWrite[] = [];
  const tasksByThread = new Map<string, OpenTaskFacts[]>();
  for (const t of facts.openTasks) {
    tasksByThread.set(t.thread, [...(tasksByThread.get(t.thread) ?? []), t]);
  }

  for (const thread of facts.threads.values()) {
    const rule = matchRule(config.rules, thread.kind, config.defaultRule);
    const tasks = tasksByThread.get(thread.ref) ?? [];
    // Reminders a person of the care team has answered are closed; the others stay open and may escalate.
    const reminders: OpenTaskFacts[] = [];
    for (const reminder of tasks.filter((t) => t.isReminder)) {
      const reply = thread.timeline.lastCareTeam;
      if (reply && reply.time > silenceStarted(reminder.task, thread)) {
        closes.push({ kind: 'close', thread: thread.ref, entry: closeEntry(reminder.task, reply.ref, now) });
        continue;
      }
      reminders.push(reminder);
      const escalation = escalationEntry(reminder.task, rule, config.clock, nowMs, now);
      if (escalation) {
        escalations.push({ kind: 'escalate', thread: thread.ref, entry: escalation });
      }
    }

    if (!thread.subject) {
      counts.skipped.noSubject++;
      continue;
    }
    const last = thread.timeline.last;
    if (!last) {
      counts.skipped.noPersonMessage++; // nobody but automated senders has written yet
      continue;
    }
    if (last.role !== 'patient') {
      counts.skipped.careTeamLast++;
      continue;
    }
    if (config.clock.hoursBetween(last.time, nowMs, rule.afterHours) < rule.afterHours) {
      counts.skipped.recent++;
      continue;
    }
    counts.stale++;
    const ruleName = rule.index ? `rule ${rule.index}` : 'default';
    counts.byRule[ruleName] = (counts.byRule[ruleName] ?? 0) + 1;
    if (reminders.length > 0) {
      counts.alreadyReminded++;
      continue;
    }
    const owner = tasks
      .filter((t) => !t.isReminder && t.task.owner?.reference)
      .sort((a, b) => (b.task.authoredOn ?? '').localeCompare(a.task.authoredOn ?? ''))[0]?.task.owner;
    creates.push({
      kind: 'create',
      thread: thread.ref,
      entry: createEntry(thread, last, owner?.reference, rule, config.clock.kind, nowMs, now),
      silentSince: last.time,
    });
  }
  const cancels = facts.orphanReminders.map((r): PlannedWrite => ({ kind: 'cancel', thread: r.thread, entry: cancelEntry(r.task, r.thread, now) }));
  creates.sort((a, b) => a.silentSince - b.silentSince);
  return { writes: [...creates.map(({ silentSince: _, ...w }) => w), ...escalations, ...closes, ...cancels], counts };
}

/**
 * When a reminder's silence began: the time it records, else the time of the patient message its
 * episode names, else (a reminder made by hand) its creation. A care-team reply sent after it
 * closes the reminder, however late it was stamped or synced.
 * @param task - The reminder.
 * @param thread - Its thread.
 * @returns Epoch milliseconds.
 */
export function silenceStarted(task: Task, thread: Pick<ThreadFacts, 'patientTimes'>): number {
  const recorded = Date.parse(task.extension?.find((e) => e.url === SILENCE_STARTED_URL)?.valueInstant ?? '');
  if (!Number.isNaN(recorded)) {
    return recorded;
  }
  const episode = task.identifier?.find((i) => i.system === EPISODE_SYSTEM)?.value?.split(':')[1];
  const episodeTime = episode ? thread.patientTimes?.get(`Communication/${episode}`) : undefined;
  return episodeTime ?? (Date.parse(task.authoredOn ?? '') || 0);
}

function episodeValue(thread: string, last: MessagePoint): string {
  return `${thread.split('/')[1]}:${last.ref.split('/')[1]}`;
}

function createEntry(
  thread: ThreadFacts,
  last: MessagePoint,
  owner: string | undefined,
  rule: ResponseRule,
  clock: 'wall' | 'business',
  nowMs: number,
  now: string
): BundleEntry {
  const value = episodeValue(thread.ref, last);
  const silentHours = Math.floor((nowMs - last.time) / HOUR_MS);
  const reminder: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    priority: rule.reminderPriority,
    code: { coding: [REMINDER_CODING], text: 'Respond to old message' },
    identifier: [{ system: EPISODE_SYSTEM, value }],
    extension: [{ url: SILENCE_STARTED_URL, valueInstant: new Date(last.time).toISOString() }],
    focus: { reference: thread.ref },
    for: { reference: thread.subject },
    authoredOn: now,
    lastModified: now,
    owner: owner ? { reference: owner } : undefined,
    description:
      `Patient message ${last.ref} unanswered for ${Math.floor(silentHours / 24)}d ${silentHours % 24}h ` +
      `(${describeRule(rule, clock)}).`,
  };
  return {
    request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${EPISODE_SYSTEM}|${value}` },
    resource: reminder,
  };
}

function noteOps(task: Task, text: string, now: string): PatchOperation[] {
  const note = { time: now, authorString: BOT_NAME, text };
  return [
    // Appended: a nurse's notes on the reminder stay as they are.
    task.note ? { op: 'add', path: '/note/-', value: note } : { op: 'add', path: '/note', value: [note] },
    { op: 'add', path: '/lastModified', value: now },
  ];
}

function closeEntry(task: WithId<Task>, reply: string, now: string): BundleEntry {
  return guardedPatchEntry(task, [
    { op: 'test', path: '/status', value: task.status },
    { op: 'replace', path: '/status', value: 'completed' },
    ...noteOps(task, `Closed by ${BOT_NAME}: the care team replied in ${reply}.`, now),
  ]);
}

function cancelEntry(task: WithId<Task>, thread: string, now: string): BundleEntry {
  return guardedPatchEntry(task, [
    { op: 'test', path: '/status', value: task.status },
    { op: 'replace', path: '/status', value: 'cancelled' },
    ...noteOps(task, `Cancelled by ${BOT_NAME}: thread ${thread} is no longer in progress (closed or deleted).`, now),
  ]);
}

/**
 * One step up the priority ladder when the reminder has been open longer than the number of
 * escalation periods its priority reflects: n periods (counted by the clock) allow at most n steps
 * above the rule's starting priority, and a run moves one step at most.
 * @param task - An open reminder.
 * @param rule - The thread's rule.
 * @param clock - Wall or business clock.
 * @param nowMs - Now, epoch ms.
 * @param now - Now, ISO.
 * @returns The patch entry, or undefined when no escalation is due.
 */
function escalationEntry(task: WithId<Task>, rule: ResponseRule, clock: Clock, nowMs: number, now: string): BundleEntry | undefined {
  const authored = Date.parse(task.authoredOn ?? '');
  if (!authored) {
    return undefined;
  }
  const ladder = PRIORITIES.length - 1;
  const hours = clock.hoursBetween(authored, nowMs, rule.escalateAfterHours * ladder);
  const periods = Math.floor(hours / rule.escalateAfterHours);
  const current = PRIORITIES.indexOf((task.priority ?? 'routine') as Priority);
  const due = Math.min(PRIORITIES.indexOf(rule.reminderPriority) + periods, ladder);
  if (periods < 1 || current >= due) {
    return undefined;
  }
  const next = PRIORITIES[current + 1];
  const unit = clock.kind === 'business' ? 'business hours' : 'h';
  return guardedPatchEntry(task, [
    { op: task.priority ? 'replace' : 'add', path: '/priority', value: next },
    ...noteOps(task, `Escalated by ${BOT_NAME} to ${next}: unanswered ${Math.floor(hours)} ${unit} after it was created.`, now),
  ]);
}

function tally(summary: StaleSummary, write: PlannedWrite, outcome: WriteOutcome, log: BotLog): void {
  const target = write.kind === 'create' ? write.thread : write.entry.request?.url;
  if (outcome.kind === 'deferred') {
    summary.deferred[outcome.why]++;
  } else if (outcome.kind === 'applied') {
    if (write.kind === 'create') {
      if (outcome.status === '201') {
        summary.created++;
        log.info(`created ${outcome.resource ? `Task/${outcome.resource.id}` : 'reminder'} for ${write.thread}`);
      } else {
        summary.episodeExists++;
      }
    } else {
      const key = ({ escalate: 'escalated', close: 'closed', cancel: 'cancelled' } as const)[write.kind];
      summary[key]++;
      log.info(`${key} ${target}`);
    }
  } else if (outcome.kind === 'conflict' && write.kind === 'create' && outcome.status === '412') {
    // 412: the episode's identifier matches several reminders (made by hand, or by an old version): one exists.
    summary.episodeExists++;
    log.info(`${target}: several reminders match this silence; none created`);
  } else if (outcome.kind === 'conflict') {
    summary.conflicts++;
    log.info(`${target} changed meanwhile; the next run decides again`);
  } else {
    summary.failed++;
    log.warn(`${write.kind} for ${target} failed (${'status' in outcome ? outcome.status : 'conflict'}): ${outcome.error}`);
  }
}

function emptySummary(config: StaleConfig): StaleSummary {
  return {
    threadsRead: 0,
    stale: 0,
    alreadyReminded: 0,
    skipped: { noSubject: 0, recent: 0, careTeamLast: 0, noPersonMessage: 0 },
    ignoredMessages: 0,
    byRule: {},
    created: 0,
    episodeExists: 0,
    escalated: 0,
    closed: 0,
    cancelled: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    stoppedEarly: false,
    clock: config.clock.kind,
    mode: 'full',
  };
}
