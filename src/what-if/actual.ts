// What the bots did in fact, read from their own Tasks: each reminder (its code, its episode
// identifier, its authoredOn) and the notes the bots append (escalations, closes, reroutes with their
// urn:medplum-messaging-bots:ooo-reroute record, the lifecycle's route record). Pure.
import type { WithId } from '@medplum/core';
import type { Annotation, Task } from '@medplum/fhirtypes';
import { OOO_BOT_NAME, REROUTE_RECORD_URL } from '../lib/reroute-plan';
import { RESPONSE_ROUTE_URL } from '../lib/response-lifecycle';
import { PRIORITIES } from '../lib/response-rules';
import type { Priority } from '../lib/response-rules';
import { BOT_NAME } from '../stale/plan';
import { madeByBots, taskKey } from './keys';
import type { BotEvent } from './replay';

const ESCALATED = new RegExp(`^Escalated by ${BOT_NAME} to (\\w+)`);

/**
 * A Task's priority when it was made: one step below its first escalation's, else as it is now.
 * @param task - The Task.
 * @returns The priority.
 */
export function firstPriority(task: Task): Priority {
  const first = escalationNotes(task)[0];
  const to = first ? PRIORITIES.indexOf(first.to) : -1;
  return to > 0 ? PRIORITIES[to - 1] : ((task.priority ?? 'routine') as Priority);
}

/**
 * The reminders bot's escalation notes on a Task, oldest first.
 * @param task - The Task.
 * @returns When each was made and the priority it reached.
 */
export function escalationNotes(task: Task): { at: number; to: Priority }[] {
  return (task.note ?? [])
    .filter((n) => n.authorString === BOT_NAME)
    .flatMap((n) => {
      const to = ESCALATED.exec(n.text ?? '')?.[1] as Priority | undefined;
      return to && PRIORITIES.includes(to) ? [{ at: noteTime(n), to }] : [];
    })
    .sort((a, b) => a.at - b.at);
}

/**
 * The ooo-reroute bot's reroute records on a Task, oldest first.
 * @param task - The Task.
 * @returns When, from whom, to whom (none: the pool), and why.
 */
export function rerouteNotes(task: Task): { at: number; from: string; to?: string; reason: string }[] {
  return (task.note ?? [])
    .filter((n) => n.authorString === OOO_BOT_NAME)
    .flatMap((n) => {
      const record = n.extension?.find((e) => e.url === REROUTE_RECORD_URL);
      const ref = (name: string): string | undefined => record?.extension?.find((e) => e.url === name)?.valueReference?.reference;
      const from = ref('from');
      return from ? [{ at: noteTime(n), from, to: ref('to'), reason: record?.extension?.find((e) => e.url === 'reason')?.valueCode ?? 'unknown' }] : [];
    })
    .sort((a, b) => a.at - b.at);
}

/**
 * What the bots did, as events of the same kinds the replay records.
 * @param tasks - Tasks focused on the period's threads (any maker).
 * @returns The events, in time order.
 */
export function actualEvents(tasks: WithId<Task>[]): BotEvent[] {
  const events: BotEvent[] = [];
  for (const task of tasks) {
    const thread = task.focus?.reference ?? '';
    const key = taskKey(task);
    const made = Date.parse(task.authoredOn ?? task.meta?.lastUpdated ?? '');
    if (key.startsWith('reminder:')) {
      events.push({ kind: 'reminder-created', at: made, thread, key, priority: firstPriority(task) });
    }
    if (key.startsWith('response:')) {
      const route = routeRecord(task);
      events.push({ kind: 'response-opened', at: made, thread, key, priority: (task.priority ?? 'routine') as Priority, route: route?.reason ?? 'unknown', owner: route?.to });
    }
    let from = firstPriority(task);
    for (const e of escalationNotes(task)) {
      events.push({ kind: 'escalated', at: e.at, thread, key, from, to: e.to });
      from = e.to;
    }
    for (const r of rerouteNotes(task)) {
      events.push({ kind: 'rerouted', at: r.at, thread, key, priority: (task.priority ?? 'routine') as Priority, from: r.from, to: r.to, reason: r.reason });
    }
    for (const n of task.note ?? []) {
      const kind = closingKind(n, madeByBots(task));
      if (kind) {
        events.push({ kind, at: noteTime(n), thread, key } as BotEvent);
      }
    }
  }
  return events.sort((a, b) => a.at - b.at);
}

type Closing = 'reminder-closed' | 'reminder-cancelled' | 'response-completed' | 'response-cancelled';

function closingKind(note: Annotation, bots: boolean): Closing | undefined {
  const text = note.text ?? '';
  if (note.authorString === BOT_NAME) {
    return text.startsWith(`Closed by ${BOT_NAME}`) ? 'reminder-closed' : text.startsWith(`Cancelled by ${BOT_NAME}`) ? 'reminder-cancelled' : undefined;
  }
  if (note.authorString === OOO_BOT_NAME && bots) {
    return text.startsWith('Completed:') ? 'response-completed' : text.startsWith('Cancelled:') ? 'response-cancelled' : undefined;
  }
  return undefined;
}

function routeRecord(task: Task): { reason: string; to?: string } | undefined {
  for (const n of task.note ?? []) {
    const record = n.extension?.find((e) => e.url === RESPONSE_ROUTE_URL);
    if (record) {
      return {
        reason: record.extension?.find((e) => e.url === 'reason')?.valueCode ?? 'unknown',
        to: record.extension?.find((e) => e.url === 'to')?.valueReference?.reference,
      };
    }
  }
  return undefined;
}

function noteTime(note: Annotation): number {
  return Date.parse(note.time ?? '') || 0;
}
