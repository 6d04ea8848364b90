// A replay's figures, per week and per priority, by the SLA export's definitions (weeks start on
// Monday, UTC; breach of the first-reply target as computeRow decides it). Pure.
import type { Task } from '@medplum/fhirtypes';
import { WALL_CLOCK } from '../lib/business-hours';
import { isOpenTask } from '../lib/fhir';
import { isResponseTask } from '../lib/response-lifecycle';
import type { LifecycleConfig } from '../lib/response-lifecycle';
import { PRIORITIES } from '../lib/response-rules';
import type { Priority } from '../lib/response-rules';
import { computeRow, DEFAULT_TARGETS } from '../sla/sla-metrics';
import type { ThreadMessage } from '../sla/sla-metrics';
import { weekOf } from '../sla/sla-report';
import { isReminder } from '../stale/plan';
import type { PeriodFacts, ReplayResult } from './replay';

/** Which settings a figure is for. */
export type Side = 'current' | 'proposed';

/** One week and priority of one side. */
export interface WhatIfRow {
  settings: Side;
  /** Monday (UTC) of the week. */
  week: string;
  priority: Priority;
  /** Reminders created, by the priority they started at. */
  reminders_created: number;
  /** Escalations that reached this priority. */
  escalations: number;
  /** Reminders open at the end of the period, by their priority then and the week they were created. */
  reminders_open_at_end: number;
  /** Response Tasks the lifecycle opened. */
  response_tasks_opened: number;
  /** Tasks sent to the pool: opened there by the lifecycle, or rerouted there. */
  to_pool: number;
  /** Tasks sent to a cover: opened with one by the lifecycle, or rerouted to one. */
  to_cover: number;
  /** Response Tasks whose first-reply target was met or missed, by the week the patient wrote. */
  first_reply_decided: number;
  first_reply_breached: number;
  /** Breached over decided (null: none decided). */
  breach_rate: number | null;
}

/** The columns of the rows, in order (CSV header). */
export const ROW_COLUMNS: (keyof WhatIfRow)[] = [
  'settings',
  'week',
  'priority',
  'reminders_created',
  'escalations',
  'reminders_open_at_end',
  'response_tasks_opened',
  'to_pool',
  'to_cover',
  'first_reply_decided',
  'first_reply_breached',
  'breach_rate',
];

type Counted = Exclude<keyof WhatIfRow, 'settings' | 'week' | 'priority' | 'breach_rate'>;

/**
 * The rows of one replay.
 * @param side - current or proposed.
 * @param result - The replay.
 * @param facts - What it replayed (period, messages).
 * @param lifecycle - The side's lifecycle settings (which Tasks are response Tasks).
 * @returns One row per week and priority with anything to count, weeks then priorities in order.
 */
export function replayRows(side: Side, result: ReplayResult, facts: PeriodFacts, lifecycle: LifecycleConfig): WhatIfRow[] {
  const rows = new Map<string, WhatIfRow>();
  const inPeriod = (at: number): boolean => at >= facts.since && at < facts.until;
  const bump = (at: number, priority: Priority, field: Counted, by = 1): void => {
    const week = weekOf(new Date(Math.max(at, facts.since)).toISOString());
    const key = `${week}|${priority}`;
    const row = rows.get(key) ?? emptyRow(side, week, priority);
    row[field] += by;
    rows.set(key, row);
  };
  for (const e of result.events.filter((x) => inPeriod(x.at))) {
    if (e.kind === 'reminder-created') {
      bump(e.at, e.priority, 'reminders_created');
    } else if (e.kind === 'escalated') {
      bump(e.at, e.to, 'escalations');
    } else if (e.kind === 'response-opened') {
      bump(e.at, e.priority, 'response_tasks_opened');
      if (e.route === 'pool' || e.route === 'cover') {
        bump(e.at, e.priority, e.route === 'pool' ? 'to_pool' : 'to_cover');
      }
    } else if (e.kind === 'rerouted') {
      bump(e.at, e.priority, e.to ? 'to_cover' : 'to_pool');
    }
  }
  for (const task of result.world.allTasks()) {
    if (isReminder(task) && isOpenTask(task)) {
      bump(Date.parse(task.authoredOn ?? '') || facts.since, (task.priority ?? 'routine') as Priority, 'reminders_open_at_end');
    }
  }
  const messages = threadMessages(facts);
  for (const task of result.world.allTasks().filter((t) => isResponseTask(t, lifecycle.code))) {
    const row = computeRow(result.world.history(task.id) as Task[], messages.get(task.focus?.reference ?? '') ?? [], DEFAULT_TARGETS, new Date(facts.until), WALL_CLOCK);
    const started = Date.parse(row.started_at ?? '');
    const status = row.target_firstReply_status;
    if (inPeriod(started) && (status === 'met' || status === 'breached')) {
      bump(started, row.priority as Priority, 'first_reply_decided');
      bump(started, row.priority as Priority, 'first_reply_breached', status === 'breached' ? 1 : 0);
    }
  }
  return [...rows.values()]
    .map((r) => ({ ...r, breach_rate: r.first_reply_decided ? r.first_reply_breached / r.first_reply_decided : null }))
    .sort((a, b) => a.week.localeCompare(b.week) || PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority));
}

/** Totals of one side over the period. */
export type Totals = Record<Counted, number> & { breach_rate: number | null; escalations_to_stat: number };

/**
 * A side's totals.
 * @param rows - Its rows.
 * @returns The sums, and the breach rate over the period.
 */
export function totals(rows: WhatIfRow[]): Totals {
  const sum = (field: Counted): number => rows.reduce((n, r) => n + r[field], 0);
  const decided = sum('first_reply_decided');
  return {
    reminders_created: sum('reminders_created'),
    escalations: sum('escalations'),
    escalations_to_stat: rows.filter((r) => r.priority === 'stat').reduce((n, r) => n + r.escalations, 0),
    reminders_open_at_end: sum('reminders_open_at_end'),
    response_tasks_opened: sum('response_tasks_opened'),
    to_pool: sum('to_pool'),
    to_cover: sum('to_cover'),
    first_reply_decided: decided,
    first_reply_breached: sum('first_reply_breached'),
    breach_rate: decided ? sum('first_reply_breached') / decided : null,
  };
}

function emptyRow(settings: Side, week: string, priority: Priority): WhatIfRow {
  return {
    settings,
    week,
    priority,
    reminders_created: 0,
    escalations: 0,
    reminders_open_at_end: 0,
    response_tasks_opened: 0,
    to_pool: 0,
    to_cover: 0,
    first_reply_decided: 0,
    first_reply_breached: 0,
    breach_rate: null,
  };
}

function threadMessages(facts: PeriodFacts): Map<string, ThreadMessage[]> {
  return new Map(
    facts.threads.map((t) => [
      `Communication/${t.header.id}`,
      t.points.map((p) => ({ id: p.ref.split('/')[1], time: new Date(p.time).toISOString(), sender: p.sender ? { reference: p.sender } : undefined })),
    ])
  );
}
