// Stale-thread reminders bot (cron).
//
// Finds open threads where the patient wrote last and nobody answered for STALE_AFTER_HOURS, and
// creates one urgent reminder Task per silence episode. Escalates reminders left unanswered and
// closes those whose thread got a care-team reply.
//
// Shape: three paged scans read only ids, references and times (thread headers, their messages,
// open Tasks); a pure function (`planStaleRun`) decides; batches of conditional or version-guarded
// writes apply it. Nothing is read per thread.
import { normalizeErrorString } from '@medplum/core';
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type { BundleEntry, Communication, Resource, Task } from '@medplum/fhirtypes';
import { createBotLog, readNumberSecret } from './lib/bot-runtime';
import type { BotLog } from './lib/bot-runtime';
import { executeBatch, guardedPatchEntry, isPatientSide, OPEN_TASK_STATUSES, referenceType, searchPages } from './lib/fhir';
import type { EntryResult, PatchOperation } from './lib/fhir';

const BOT_NAME = 'stale-thread-reminders';
const HOUR_MS = 3_600_000;

/** The reminder Task code. */
export const REMINDER_CODING = { system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' };
/** Identifier system of a reminder's silence episode: value `<thread id>:<last patient message id>`. */
export const EPISODE_SYSTEM = 'urn:medplum-messaging-bots:stale-thread-episode';

const PRIORITY_LADDER: NonNullable<Task['priority']>[] = ['routine', 'urgent', 'asap', 'stat'];

/** Settings, from Bot secrets. */
export interface StaleConfig {
  staleAfterHours: number;
  escalateAfterHours: number;
  /** The Bot's timeout; the run stops starting writes with a margin before it. */
  timeoutSeconds: number;
}

/** A message reduced to what decisions need. */
export interface MessagePoint {
  /** Reference string of the message (or of the header, for a thread without messages). */
  ref: string;
  time: number;
  patientSide: boolean;
}

/** An open thread reduced to what decisions need. */
export interface ThreadFacts {
  ref: string;
  subject?: string;
  /** The header itself, the thread's "last message" until a message exists. */
  header: MessagePoint;
  last?: MessagePoint;
  lastCareTeam?: MessagePoint;
}

/** An open Task on a thread, reduced to what decisions need. */
export interface OpenTaskFacts {
  task: WithId<Task>;
  thread: string;
  isReminder: boolean;
}

/** What the scans found. */
export interface StaleFacts {
  threads: Map<string, ThreadFacts>;
  openTasks: OpenTaskFacts[];
  /** Messages of open threads without a sender: they cannot tell who spoke last. */
  ignoredMessages: number;
}

/** A write the run wants to make, with what it is for. */
export interface PlannedWrite {
  kind: 'create' | 'escalate' | 'close';
  thread: string;
  entry: BundleEntry;
}

/** Counts of what the decision found. */
export interface PlanCounts {
  threadsRead: number;
  stale: number;
  alreadyReminded: number;
  skipped: { noSubject: number; recent: number; careTeamLast: number };
  ignoredMessages: number;
}

/** What a run did. */
export interface StaleSummary extends PlanCounts {
  created: number;
  /** Conditional creates that found the episode's reminder already there (a completed one, or an overlapping run's). */
  episodeExists: number;
  escalated: number;
  closed: number;
  /** Version-guarded patches whose resource changed meanwhile; the next run decides again. */
  conflicts: number;
  failed: number;
  /** Writes not started because the deadline was near; the next run makes them. */
  deferred: number;
  stoppedEarly: boolean;
}

/**
 * Stale-thread reminders: one reminder Task per silent thread and silence episode, escalation of
 * unanswered reminders, and closing of answered ones.
 *
 * Secrets: `STALE_AFTER_HOURS` (72), `ESCALATE_AFTER_HOURS` (24), `BOT_TIMEOUT_SECONDS` (10, set it to the
 * Bot's `timeout`).
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - The cron event; its input is ignored.
 * @returns A summary with counts.
 */
export async function handler(medplum: MedplumClient, event: BotEvent): Promise<StaleSummary> {
  const startedAt = Date.now();
  const log = createBotLog(BOT_NAME);
  const config: StaleConfig = {
    staleAfterHours: readNumberSecret(event, 'STALE_AFTER_HOURS', 72, log),
    escalateAfterHours: readNumberSecret(event, 'ESCALATE_AFTER_HOURS', 24, log),
    timeoutSeconds: readNumberSecret(event, 'BOT_TIMEOUT_SECONDS', 10, log),
  };
  // Stop starting new work with a margin of 20% of the timeout (at least 2 s).
  const timeoutMs = config.timeoutSeconds * 1000;
  const stopAt = startedAt + timeoutMs - Math.max(2000, timeoutMs * 0.2);
  const nearDeadline = (): boolean => Date.now() >= stopAt;

  const facts = await gatherFacts(medplum, nearDeadline, log);
  if (!facts) {
    log.warn('deadline reached while reading; nothing written, the next run starts over');
    return { ...emptySummary(), stoppedEarly: true };
  }
  const plan = planStaleRun(facts, config, new Date().toISOString());
  const results = await executeBatch(
    medplum,
    plan.writes.map((w) => w.entry),
    250,
    nearDeadline
  );

  const summary: StaleSummary = { ...emptySummary(), ...plan.counts };
  plan.writes.forEach((write, i) => tally(summary, write, results[i], log));
  summary.stoppedEarly = summary.deferred > 0;
  if (summary.deferred) {
    log.warn(`deadline near: ${summary.deferred} write(s) left for the next run`);
  }
  log.info(
    `threads=${summary.threadsRead} stale=${summary.stale} created=${summary.created} episodeExists=${summary.episodeExists} ` +
      `alreadyReminded=${summary.alreadyReminded} escalated=${summary.escalated} closed=${summary.closed} ` +
      `skipped=${JSON.stringify(summary.skipped)} ignoredMessages=${summary.ignoredMessages} conflicts=${summary.conflicts} failed=${summary.failed} deferred=${summary.deferred}`
  );
  return summary;
}

async function gatherFacts(medplum: MedplumClient, nearDeadline: () => boolean, log: BotLog): Promise<StaleFacts | undefined> {
  const threads = new Map<string, ThreadFacts>();
  let ignoredMessages = 0;
  // Visits must be idempotent: a scan may be read again from the start (see below).
  const scan = async (resourceType: 'Communication' | 'Task', query: Record<string, string>, visit: (r: WithId<Resource>) => void): Promise<boolean> => {
    // `_sort=_lastUpdated` lets the server page with a cursor (no offset limit on large projects).
    // The server refuses a cursor page whose resources all share one lastUpdated instant (a bulk
    // import); then the scan is read again with offset paging.
    for (const sorted of [true, false]) {
      try {
        const params = [...Object.entries(query), ...(sorted ? [['_sort', '_lastUpdated']] : [])];
        for await (const page of searchPages(medplum, resourceType, params)) {
          page.entry?.forEach((e) => e.resource && visit(e.resource as WithId<Resource>));
          if (nearDeadline()) {
            return false;
          }
        }
        return true;
      } catch (err) {
        if (!sorted || !/cursor fails to make progress/i.test(normalizeErrorString(err))) {
          throw err;
        }
        log.warn(`${resourceType} scan: cursor paging cannot progress (shared lastUpdated); reading with offset paging`);
      }
    }
    return false;
  };

  const headersRead = await scan(
    'Communication',
    { 'part-of:missing': 'true', status: 'in-progress', _elements: 'subject,sender,sent' },
    (r) => {
      const header = r as WithId<Communication>;
      const ref = `Communication/${header.id}`;
      threads.set(ref, { ref, subject: header.subject?.reference, header: point(header) });
    }
  );
  const messagesRead =
    headersRead &&
    (await scan(
      'Communication',
      { 'part-of:Communication.status': 'in-progress', _elements: 'partOf,sender,sent,status' },
      (r) => {
        const message = r as WithId<Communication>;
        const thread = threads.get(message.partOf?.find((p) => referenceType(p) === 'Communication')?.reference ?? '');
        if (!thread || message.status === 'entered-in-error') {
          return;
        }
        if (!message.sender) {
          // Nobody to tell apart as patient or care team: such a message decides nothing.
          ignoredMessages++;
          return;
        }
        const p = point(message);
        if (!thread.last || isLater(p, thread.last)) {
          thread.last = p;
        }
        if (!p.patientSide && (!thread.lastCareTeam || isLater(p, thread.lastCareTeam))) {
          thread.lastCareTeam = p;
        }
      }
    ));
  const openTasks = new Map<string, OpenTaskFacts>();
  const tasksRead =
    messagesRead &&
    (await scan(
      'Task',
      { status: OPEN_TASK_STATUSES.join(','), _elements: 'focus,owner,code,status,priority,authoredOn,note' },
      (r) => {
        const task = r as WithId<Task>;
        const thread = task.focus?.reference;
        if (thread && threads.has(thread)) {
          const isReminder = !!task.code?.coding?.some((c) => c.system === REMINDER_CODING.system && c.code === REMINDER_CODING.code);
          openTasks.set(task.id, { task, thread, isReminder });
        }
      }
    ));
  return tasksRead ? { threads, openTasks: [...openTasks.values()], ignoredMessages } : undefined;
}

function point(message: WithId<Communication>): MessagePoint {
  return {
    ref: `Communication/${message.id}`,
    time: Date.parse(message.sent ?? message.meta?.lastUpdated ?? '') || 0,
    patientSide: isPatientSide(message.sender),
  };
}

function isLater(a: MessagePoint, b: MessagePoint): boolean {
  return a.time > b.time || (a.time === b.time && a.ref > b.ref);
}

/**
 * The pure decision of a run: reminders to create, reminders to escalate and to close.
 * @param facts - What the scans found.
 * @param config - Thresholds.
 * @param now - Current time, ISO.
 * @returns The writes, in the order to make them, and counts.
 */
export function planStaleRun(facts: StaleFacts, config: StaleConfig, now: string): { writes: PlannedWrite[]; counts: PlanCounts } {
  const nowMs = Date.parse(now);
  const counts: PlanCounts = {
    threadsRead: facts.threads.size,
    stale: 0,
    alreadyReminded: 0,
    skipped: { noSubject: 0, recent: 0, careTeamLast: 0 },
    ignoredMessages: facts.ignoredMessages,
  };
  const creates: PlannedWrite[] = [];
  const closes: PlannedWrite[] = [];
  const escalations: PlannedWrite[] = [];
  const tasksByThread = new Map<string, OpenTaskFacts[]>();
  for (const t of facts.openTasks) {
    tasksByThread.set(t.thread, [...(tasksByThread.get(t.thread) ?? []), t]);
  }

  for (const thread of facts.threads.values()) {
    const tasks = tasksByThread.get(thread.ref) ?? [];
    // Reminders the care team has answered are closed; the others stay open and may escalate.
    const reminders: OpenTaskFacts[] = [];
    for (const reminder of tasks.filter((t) => t.isReminder)) {
      const { task } = reminder;
      const reply = thread.lastCareTeam;
      if (reply && reply.time > Date.parse(task.authoredOn ?? '')) {
        closes.push({ kind: 'close', thread: thread.ref, entry: closeEntry(task, reply.ref, now) });
        continue;
      }
      reminders.push(reminder);
      const escalation = escalationEntry(task, config, nowMs, now);
      if (escalation) {
        escalations.push({ kind: 'escalate', thread: thread.ref, entry: escalation });
      }
    }

    if (!thread.subject) {
      counts.skipped.noSubject++;
      continue;
    }
    const last = thread.last ?? thread.header;
    if (nowMs - last.time < config.staleAfterHours * HOUR_MS) {
      counts.skipped.recent++;
      continue;
    }
    if (!last.patientSide) {
      counts.skipped.careTeamLast++;
      continue;
    }
    counts.stale++;
    if (reminders.length > 0) {
      counts.alreadyReminded++;
      continue;
    }
    const owner = tasks
      .filter((t) => !t.isReminder && t.task.owner?.reference)
      .sort((a, b) => (b.task.authoredOn ?? '').localeCompare(a.task.authoredOn ?? ''))[0]?.task.owner;
    creates.push({ kind: 'create', thread: thread.ref, entry: createEntry(thread, last, owner?.reference, nowMs, now) });
  }
  return { writes: [...creates, ...closes, ...escalations], counts };
}

function episodeValue(thread: string, last: MessagePoint): string {
  return `${thread.split('/')[1]}:${last.ref.split('/')[1]}`;
}

function createEntry(thread: ThreadFacts, last: MessagePoint, owner: string | undefined, nowMs: number, now: string): BundleEntry {
  const value = episodeValue(thread.ref, last);
  const silentHours = Math.floor((nowMs - last.time) / HOUR_MS);
  const reminder: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    priority: 'urgent',
    code: { coding: [REMINDER_CODING], text: 'Respond to old message' },
    identifier: [{ system: EPISODE_SYSTEM, value }],
    focus: { reference: thread.ref },
    for: { reference: thread.subject },
    authoredOn: now,
    lastModified: now,
    owner: owner ? { reference: owner } : undefined,
    description: `Patient message ${last.ref} unanswered for ${Math.floor(silentHours / 24)}d ${silentHours % 24}h.`,
  };
  return {
    request: { method: 'POST', url: 'Task', ifNoneExist: `identifier=${EPISODE_SYSTEM}|${value}` },
    resource: reminder,
  };
}

function noteOps(task: Task, text: string, now: string): PatchOperation[] {
  const note = { time: now, authorString: BOT_NAME, text };
  return [
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

/**
 * One step up the priority ladder when the reminder has been open longer than the number of
 * escalation periods its priority reflects (urgent → asap after one period, → stat after two).
 * @param task - An open reminder.
 * @param config - Thresholds.
 * @param nowMs - Now, epoch ms.
 * @param now - Now, ISO.
 * @returns The patch entry, or undefined when no escalation is due.
 */
function escalationEntry(task: WithId<Task>, config: StaleConfig, nowMs: number, now: string): BundleEntry | undefined {
  const authored = Date.parse(task.authoredOn ?? '');
  if (!authored) {
    return undefined;
  }
  const periods = Math.floor((nowMs - authored) / (config.escalateAfterHours * HOUR_MS));
  const current = PRIORITY_LADDER.indexOf(task.priority ?? 'routine');
  const due = Math.min(PRIORITY_LADDER.indexOf('urgent') + periods, PRIORITY_LADDER.length - 1);
  if (periods < 1 || current >= due) {
    return undefined;
  }
  const next = PRIORITY_LADDER[current + 1];
  return guardedPatchEntry(task, [
    { op: task.priority ? 'replace' : 'add', path: '/priority', value: next },
    ...noteOps(task, `Escalated by ${BOT_NAME} to ${next}: unanswered ${Math.floor((nowMs - authored) / HOUR_MS)}h after it was created.`, now),
  ]);
}

function tally(summary: StaleSummary, write: PlannedWrite, result: EntryResult | undefined, log: BotLog): void {
  const target = write.kind === 'create' ? write.thread : write.entry.request?.url;
  if (!result) {
    summary.deferred++;
    return;
  }
  if (result.ok) {
    if (write.kind === 'create') {
      if (result.status === '201') {
        summary.created++;
        log.info(`created ${result.resource ? `Task/${result.resource.id}` : 'reminder'} for ${write.thread}`);
      } else {
        summary.episodeExists++;
      }
    } else {
      summary[write.kind === 'close' ? 'closed' : 'escalated']++;
      log.info(`${write.kind === 'close' ? 'closed' : 'escalated'} ${target}`);
    }
    return;
  }
  if (write.kind !== 'create' && /test failed/i.test(result.error ?? '')) {
    summary.conflicts++;
    log.info(`${target} changed meanwhile; the next run decides again`);
    return;
  }
  summary.failed++;
  log.warn(`${write.kind} for ${target} failed (${result.status}): ${result.error}`);
}

function emptySummary(): StaleSummary {
  return {
    threadsRead: 0,
    stale: 0,
    alreadyReminded: 0,
    skipped: { noSubject: 0, recent: 0, careTeamLast: 0 },
    ignoredMessages: 0,
    created: 0,
    episodeExists: 0,
    escalated: 0,
    closed: 0,
    conflicts: 0,
    failed: 0,
    deferred: 0,
    stoppedEarly: false,
  };
}
