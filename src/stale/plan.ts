// The stale bot's decision, pure: from what was read of each thread, the reminders to create,
// escalate, close and cancel. It never reads or writes.
//
// A patient waits from the first patient-side message after the care team last spoke (or since the
// thread began): follow-ups never restart that clock. One reminder per waiting episode, named like the
// response lifecycle's (`<thread id>:after:<care-team message id | start>`) and created conditionally
// on that name, so a follow-up adds none and a reminder a person closed is not made again.
import type { WithId } from '@medplum/core';
import type { BundleEntry, Task } from '@medplum/fhirtypes';
import type { Clock } from '../lib/business-hours';
import { guardedPatchEntry } from '../lib/fhir';
import type { PatchOperation } from '../lib/fhir';
import { describeRule, matchRule, PRIORITIES } from '../lib/response-rules';
import type { Priority, ResponseRule, ThreadKind } from '../lib/response-rules';
import { firstUnanswered, unansweredRun } from '../lib/thread';
import type { MessagePoint, Timeline } from '../lib/thread';
import type { StaleConfig } from './settings';

export const BOT_NAME = 'stale-thread-reminders';
const HOUR_MS = 3_600_000;

/** The reminder Task code. */
export const REMINDER_CODING = { system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' };
/**
 * Identifier system of a reminder's waiting episode: value `<thread id>:after:<care-team message id | start>`,
 * named like the response lifecycle's episode (the care team's last message before the patient
 * wrote, or the thread's start), so follow-ups stay in the episode. Reminders of older versions are
 * named `<thread id>:<patient message id>`.
 */
export const EPISODE_SYSTEM = 'urn:medplum-messaging-bots:stale-thread-episode';
/** Extension on a reminder: when the first unanswered patient message of its episode was sent. */
export const SILENCE_STARTED_URL = 'urn:medplum-messaging-bots:silence-started';

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
  /**
   * Messages stored (`meta.lastUpdated`) before this instant were not read: the timeline may miss the
   * care team's last message and the first unanswered one. Undefined: the whole thread was read.
   */
  readFrom?: number;
  /** The header's `sent`, when set: no message of the thread is older. */
  startedAt?: number;
  /** Its open Tasks were not read (a full reconcile reads them only for threads it would remind). */
  tasksUnread?: boolean;
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

/** What the decision found, and what it needs read before it can decide some threads. */
export interface StalePlan {
  writes: PlannedWrite[];
  counts: PlanCounts;
  /**
   * Threads that are stale without a reminder, whose read range holds neither the care team's last
   * message nor the thread's start: their episode cannot be named yet (see `knowsEpisode`).
   */
  lookback: string[];
  /** Threads that are stale, whose open Tasks were not read: a reminder may exist, and its owner is theirs. */
  tasks: string[];
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

/**
 * Whether a Task is a reminder: it carries the reminder coding.
 * @param task - A Task.
 * @returns True for a reminder.
 */
export function isReminder(task: Task): boolean {
  return !!task.code?.coding?.some((c) => c.system === REMINDER_CODING.system && c.code === REMINDER_CODING.code);
}

/**
 * The pure decision of a run: reminders to create, escalate, close and cancel.
 * @param facts - What the scans found.
 * @param config - Rules, defaults and clock.
 * @param now - Current time, ISO.
 * @returns The writes, in the order to make them (oldest silence first, then escalations, closes,
 *   cancellations: what matters most to patients is spent first when the quota runs short), and counts.
 */
export function planStaleRun(facts: StaleFacts, config: StaleConfig, now: string): StalePlan {
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
  const lookback: string[] = [];
  const toRead: string[] = [];
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
    // The patient waits from the first message the care team has not answered: follow-ups do not restart it.
    const first = firstUnanswered(thread.timeline);
    if (last.role !== 'patient' || !first) {
      counts.skipped.careTeamLast++;
      continue;
    }
    if (config.clock.hoursBetween(first.time, nowMs, rule.afterHours) < rule.afterHours) {
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
    if (!knowsEpisode(thread)) {
      lookback.push(thread.ref);
      continue;
    }
    if (thread.tasksUnread) {
      toRead.push(thread.ref);
      continue;
    }
    const owner = tasks
      .filter((t) => !t.isReminder && t.task.owner?.reference)
      .sort((a, b) => (b.task.authoredOn ?? '').localeCompare(a.task.authoredOn ?? ''))[0]?.task.owner;
    creates.push({
      kind: 'create',
      thread: thread.ref,
      entry: createEntry(thread, owner?.reference, rule, config.clock.kind, nowMs, now),
      silentSince: first.time,
    });
  }
  const cancels = facts.orphanReminders.map((r): PlannedWrite => ({ kind: 'cancel', thread: r.thread, entry: cancelEntry(r.task, r.thread, now) }));
  creates.sort((a, b) => a.silentSince - b.silentSince);
  return { writes: [...creates.map(({ silentSince: _, ...w }) => w), ...escalations, ...closes, ...cancels], counts, lookback, tasks: toRead };
}

/**
 * Whether what was read of a thread names its waiting episode: the whole thread was read, or the
 * read range holds the care team's last message (everything not read is older), or the thread's start.
 * @param thread - The thread.
 * @returns True when the episode and its first unanswered message are known.
 */
export function knowsEpisode(thread: Pick<ThreadFacts, 'readFrom' | 'startedAt' | 'timeline'>): boolean {
  const from = thread.readFrom;
  const reply = thread.timeline.lastCareTeam;
  return from === undefined || (!!reply && reply.time >= from) || (thread.startedAt !== undefined && thread.startedAt >= from);
}

/**
 * The episode a thread's patient is waiting in: `<thread id>:after:<care-team message id | start>`.
 * @param thread - The thread reference.
 * @param timeline - Its timeline (the care team's last message read).
 * @returns The identifier value.
 */
export function episodeValue(thread: string, timeline: Timeline): string {
  return `${thread.split('/')[1]}:after:${timeline.lastCareTeam ? timeline.lastCareTeam.ref.split('/')[1] : 'start'}`;
}

/** At most this many legacy names are matched per episode (the first unanswered message's, then the latest). */
const LEGACY_NAMES = 20;

/**
 * The names older versions gave the same episode: `<thread id>:<patient message id>`, for its
 * unanswered messages (they named a reminder after the latest patient message at the time).
 * @param thread - The thread reference.
 * @param timeline - Its timeline.
 * @returns Identifier values, the first unanswered message's first.
 */
export function legacyEpisodeValues(thread: string, timeline: Timeline): string[] {
  const run = unansweredRun(timeline);
  const named = run.length > LEGACY_NAMES ? [run[0], ...run.slice(run.length - LEGACY_NAMES + 1)] : run;
  return named.map((p) => `${thread.split('/')[1]}:${p.ref.split('/')[1]}`);
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
  // A legacy episode names its patient message (`<thread>:<message>`); `<thread>:after:...` names none.
  const [, episode, extra] = task.identifier?.find((i) => i.system === EPISODE_SYSTEM)?.value?.split(':') ?? [];
  const episodeTime = episode && extra === undefined ? thread.patientTimes?.get(`Communication/${episode}`) : undefined;
  return episodeTime ?? (Date.parse(task.authoredOn ?? '') || 0);
}

function createEntry(thread: ThreadFacts, owner: string | undefined, rule: ResponseRule, clock: 'wall' | 'business', nowMs: number, now: string): BundleEntry {
  const first = firstUnanswered(thread.timeline) as MessagePoint;
  const value = episodeValue(thread.ref, thread.timeline);
  const silentHours = Math.floor((nowMs - first.time) / HOUR_MS);
  const reminder: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    priority: rule.reminderPriority,
    code: { coding: [REMINDER_CODING], text: 'Respond to old message' },
    identifier: [{ system: EPISODE_SYSTEM, value }],
    extension: [{ url: SILENCE_STARTED_URL, valueInstant: new Date(first.time).toISOString() }],
    focus: { reference: thread.ref },
    for: { reference: thread.subject },
    authoredOn: now,
    lastModified: now,
    owner: owner ? { reference: owner } : undefined,
    description:
      `Patient message ${first.ref} unanswered for ${Math.floor(silentHours / 24)}d ${silentHours % 24}h ` +
      `(${describeRule(rule, clock)}).`,
  };
  // Status-agnostic: a reminder a person completed or cancelled for this episode is not made again.
  // The legacy names too, so a clinic upgrading gets no second reminder for a waiting patient.
  const names = [value, ...legacyEpisodeValues(thread.ref, thread.timeline)].map((v) => `${EPISODE_SYSTEM}|${v}`);
  return {
    request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${names.join(',')}` },
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

