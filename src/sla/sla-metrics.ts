// SLA metrics of message-response Tasks and reminders, computed from each Task's version history
// and the care team's messages in its thread. Pure: no I/O.
import type { Task } from '@medplum/fhirtypes';
import { WALL_CLOCK } from '../lib/business-hours';
import type { Clock } from '../lib/business-hours';
import { answerOf, questionOf } from '../lib/response-lifecycle';
import { conversation, senderRole } from '../lib/thread';

const TARGET_NAMES = ['firstReply', 'claim', 'complete'] as const;

/** Hours allowed per priority, for one target. */
export type TargetHours = Partial<Record<NonNullable<Task['priority']>, number>>;

/** Targets by name: `firstReply` (authoredOn → first care-team reply), and optionally `claim`, `complete`. */
export type Targets = Partial<Record<'firstReply' | 'claim' | 'complete', TargetHours>>;

/** The default service levels: first care-team reply within these wall-clock hours. */
export const DEFAULT_TARGETS: Targets = { firstReply: { routine: 24, urgent: 4, asap: 1, stat: 0.25 } };

/** A message of a thread, reduced to what the metrics need. */
export interface ThreadMessage {
  id: string;
  /** sent, else meta.lastUpdated. */
  time: string;
  sender?: { reference?: string };
  /** Communication.status; entered-in-error messages never count. */
  status?: string;
}

/**
 * Checks a targets file's content.
 * @param value - The parsed JSON.
 * @returns The targets, or what is wrong with them (naming the key).
 */
export function parseTargets(value: unknown): { targets: Targets } | { error: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'must be a JSON object like {"firstReply": {"routine": 24}}' };
  }
  for (const [name, byPriority] of Object.entries(value)) {
    if (!TARGET_NAMES.includes(name as (typeof TARGET_NAMES)[number])) {
      return { error: `unknown target "${name}" (use ${TARGET_NAMES.join(', ')})` };
    }
    if (!byPriority || typeof byPriority !== 'object' || Array.isArray(byPriority)) {
      return { error: `${name} must be an object of hours per priority` };
    }
    for (const [priority, hours] of Object.entries(byPriority)) {
      if (!PRIORITY_RANK.includes(priority)) {
        return { error: `${name}.${priority}: unknown priority (use ${PRIORITY_RANK.join(', ')})` };
      }
      if (typeof hours !== 'number' || !Number.isFinite(hours) || hours < 0) {
        return { error: `${name}.${priority}: ${JSON.stringify(hours)} is not a number of hours` };
      }
    }
  }
  return { targets: value as Targets };
}

/**
 * The columns of an export, in order: the same for every row, so an empty CSV still has its header.
 * @param targets - The targets (one set of target columns each).
 * @returns Column names.
 */
export function slaColumns(targets: Targets): string[] {
  return [
    'id',
    'code',
    'thread_id',
    'patient_id',
    'priority',
    'status',
    'authored_on',
    'started_at',
    'first_claimed_at',
    'first_reply_at',
    'first_reply_message_id',
    'completed_at',
    'clock',
    'hours_to_claim',
    'hours_to_first_reply',
    'hours_to_complete',
    'reroute_count',
    'escalation_count',
    ...Object.keys(targets).flatMap((name) => [`target_${name}_hours`, `target_${name}_elapsed_hours`, `target_${name}_status`]),
  ];
}

/** One exported row. */
export interface SlaRow {
  id: string;
  code: string | null;
  thread_id: string | null;
  patient_id: string | null;
  priority: string;
  status: string;
  authored_on: string | null;
  first_claimed_at: string | null;
  /** When the clock starts: the patient message that opened the episode, when the Task names it; else authored_on. */
  started_at: string | null;
  first_reply_at: string | null;
  first_reply_message_id: string | null;
  completed_at: string | null;
  /** How hours are counted: `wall` (every hour) or `business` (open hours only). */
  clock: 'wall' | 'business';
  hours_to_claim: number | null;
  hours_to_first_reply: number | null;
  hours_to_complete: number | null;
  reroute_count: number;
  escalation_count: number;
  /** Per target: met, breached or open, with the hours elapsed (to the event, or to now while open). */
  [target: `target_${string}`]: string | number | null;
}

const PRIORITY_RANK = ['routine', 'urgent', 'asap', 'stat'];

/**
 * Computes a Task's row.
 * @param versions - The Task's versions, any order (each with meta.lastUpdated).
 * @param messages - Messages of the Task's thread.
 * @param targets - Service levels.
 * @param now - The export time, for targets still open.
 * @param clock - How hours are counted (wall clock by default, or business hours).
 * @returns The row.
 */
export function computeRow(versions: Task[], messages: ThreadMessage[], targets: Targets, now: Date, clock: Clock = WALL_CLOCK): SlaRow {
  const history = [...versions].sort((a, b) => time(a) - time(b));
  const current = history[history.length - 1];
  const authoredOn = current.authoredOn ?? history[0].meta?.lastUpdated ?? null;
  // The question and its answer as the lifecycle reads them (questionOf, answerOf): the clock starts
  // at the patient message that opened the episode when the Task names one still unanswered when it
  // was made (a response Task the sweep opened after a lost event), else when the Task was authored (a
  // hand-off, "I'll ask Dr B": the message that handed it off is no answer). Only a person of the care
  // team answers: an auto-acknowledgement does not stop the clock.
  const talk = conversation(
    messages
      .filter((m) => m.status !== 'entered-in-error')
      .map((m) => ({ ref: `Communication/${m.id}`, time: Date.parse(m.time) || 0, role: senderRole(m.sender), sender: m.sender?.reference }))
  );
  const task = { ...current, authoredOn: authoredOn ?? undefined };
  const question = questionOf(task, talk);
  const startedAt = question?.kind === 'message' ? new Date(question.message.time).toISOString() : authoredOn;
  const authored = startedAt ? Date.parse(startedAt) : NaN;
  const firstClaimed = history.find((v) => v.owner?.reference);
  const completed = history.find((v) => v.status === 'completed');
  const answer = question ? answerOf(task, talk) : undefined;
  const reply = answer ? messages.find((m) => `Communication/${m.id}` === answer.ref) : undefined;

  const at = (v: Task | undefined): string | null => (v ? (v.meta?.lastUpdated ?? null) : null);
  const hoursTo = (iso: string | null): number | null => (iso && startedAt ? round(clock.hoursBetween(authored, Date.parse(iso))) : null);
  const events = { claim: at(firstClaimed), firstReply: reply?.time ?? null, complete: at(completed) };

  const row: SlaRow = {
    id: current.id as string,
    code: current.code?.coding?.[0] ? `${current.code.coding[0].system}|${current.code.coding[0].code}` : null,
    thread_id: current.focus?.reference?.split('/')[1] ?? null,
    patient_id: current.for?.reference ?? null,
    priority: current.priority ?? 'routine',
    status: current.status,
    authored_on: authoredOn,
    started_at: startedAt,
    first_claimed_at: events.claim,
    first_reply_at: events.firstReply,
    first_reply_message_id: reply?.id ?? null,
    completed_at: events.complete,
    clock: clock.kind,
    hours_to_claim: hoursTo(events.claim),
    hours_to_first_reply: hoursTo(events.firstReply),
    hours_to_complete: hoursTo(events.complete),
    reroute_count: countReroutes(history),
    escalation_count: countEscalations(history),
  };
  for (const [name, byPriority] of Object.entries(targets) as [keyof Targets, TargetHours][]) {
    const limit = byPriority[row.priority as keyof TargetHours];
    const reached = events[name];
    const elapsed = startedAt ? clock.hoursBetween(authored, reached ? Date.parse(reached) : now.getTime()) : null;
    row[`target_${name}_hours`] = limit ?? null;
    row[`target_${name}_elapsed_hours`] = elapsed === null ? null : round(elapsed);
    row[`target_${name}_status`] =
      limit === undefined || elapsed === null ? null : elapsed > limit ? 'breached' : reached ? 'met' : 'open';
  }
  return row;
}

/**
 * Reroutes: versions where the out-of-office bot removed or replaced the owner (it notes each one).
 * @param history - Versions, oldest first.
 * @returns How many.
 */
function countReroutes(history: Task[]): number {
  let count = 0;
  for (let i = 1; i < history.length; i++) {
    const before = history[i - 1];
    const after = history[i];
    const ownerChanged = before.owner?.reference && before.owner.reference !== after.owner?.reference;
    const byBot = (after.note?.length ?? 0) > (before.note?.length ?? 0) && after.note?.at(-1)?.authorString === 'ooo-reroute';
    if (ownerChanged && byBot) {
      count++;
    }
  }
  return count;
}

/**
 * Escalations: versions where the priority went up.
 * @param history - Versions, oldest first.
 * @returns How many.
 */
function countEscalations(history: Task[]): number {
  let count = 0;
  for (let i = 1; i < history.length; i++) {
    if (PRIORITY_RANK.indexOf(history[i].priority ?? 'routine') > PRIORITY_RANK.indexOf(history[i - 1].priority ?? 'routine')) {
      count++;
    }
  }
  return count;
}

function time(task: Task): number {
  return Date.parse(task.meta?.lastUpdated ?? '') || 0;
}

function round(hours: number): number {
  return Math.round(hours * 1000) / 1000;
}

/** Per-priority summary line. */
export interface PrioritySummary {
  priority: string;
  count: number;
  claim: { p50: number | null; p90: number | null };
  firstReply: { p50: number | null; p90: number | null };
  complete: { p50: number | null; p90: number | null };
  /** Breached first-reply targets over Tasks with a decided (met or breached) first-reply target. */
  breachRate: number | null;
  reroutes: number;
}

/**
 * The nearest-rank percentile (the smallest value with at least p% of values at or below it).
 * @param values - Values.
 * @param p - Percentile, 0-100.
 * @returns The percentile, or null for no values.
 */
export function percentile(values: number[], p: number): number | null {
  if (!values.length) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Summarizes rows per priority.
 * @param rows - Exported rows.
 * @returns One line per priority present, in priority order.
 */
export function summarize(rows: SlaRow[]): PrioritySummary[] {
  const stats = (values: (number | null)[]): { p50: number | null; p90: number | null } => {
    const present = values.filter((v): v is number => v !== null);
    return { p50: percentile(present, 50), p90: percentile(present, 90) };
  };
  return PRIORITY_RANK.flatMap((priority) => {
    const group = rows.filter((r) => r.priority === priority);
    if (!group.length) {
      return [];
    }
    const decided = group.filter((r) => r.target_firstReply_status === 'met' || r.target_firstReply_status === 'breached');
    return [
      {
        priority,
        count: group.length,
        claim: stats(group.map((r) => r.hours_to_claim)),
        firstReply: stats(group.map((r) => r.hours_to_first_reply)),
        complete: stats(group.map((r) => r.hours_to_complete)),
        breachRate: decided.length ? decided.filter((r) => r.target_firstReply_status === 'breached').length / decided.length : null,
        reroutes: group.reduce((n, r) => n + r.reroute_count, 0),
      },
    ];
  });
}
