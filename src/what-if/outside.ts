// Tasks the bots did not make (a person's response Task, a reminder made by hand, another
// integration's Task), as they were when made: the replay puts them in its world at that time,
// with their first owner, and closes them when they were closed. Pure.
import type { WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { isOpenTask } from '../lib/fhir';
import { OOO_BOT_NAME } from '../lib/reroute-plan';
import { BOT_NAME } from '../stale/plan';
import { firstPriority, rerouteNotes } from './actual';
import { madeByBots } from './keys';
import type { OutsideTask } from './replay';

/**
 * The Tasks the replay takes as given.
 * @param tasks - Tasks on the period's threads, as they are now.
 * @param from - The replay's start: Tasks closed before it are left out.
 * @param firstStored - When a Task without authoredOn was first stored (its first version), by id:
 *   its current version's lastUpdated is its last change (a bot's reroute, a person's edit), not when
 *   it was made.
 * @returns Each Task as made, when, and when it was closed.
 */
export function outsideTasks(tasks: WithId<Task>[], from: number, firstStored: Map<string, number> = new Map()): OutsideTask[] {
  return tasks.flatMap((task) => {
    if (madeByBots(task)) {
      return [];
    }
    const at = Date.parse(task.authoredOn ?? '') || firstStored.get(task.id) || Date.parse(task.meta?.lastUpdated ?? '') || from;
    // When it was last changed: a closed Task's closing, as far as the current version tells.
    const closedAt = Date.parse(task.lastModified ?? task.meta?.lastUpdated ?? '') || at;
    const closed = isOpenTask(task) ? undefined : { at: Math.max(at, closedAt), status: task.status };
    if (closed && closed.at < from) {
      return [];
    }
    const firstOwner = rerouteNotes(task)[0]?.from ?? task.owner?.reference;
    const made: WithId<Task> = {
      ...task,
      status: closed ? 'requested' : task.status,
      priority: firstPriority(task),
      owner: firstOwner ? { reference: firstOwner } : undefined,
      // The bots' notes are what the replay decides again.
      note: task.note?.filter((n) => n.authorString !== OOO_BOT_NAME && n.authorString !== BOT_NAME),
    };
    return [{ task: made, at, closed }];
  });
}

/**
 * A thread header as it was before the out-of-office bot's absence reroutes changed its recipients
 * (an absent owner taken off the thread, their cover added), from the reroute records on its Tasks:
 * the replay makes those changes again when it decides them.
 * @param header - The header as it is now.
 * @param tasks - The thread's Tasks, as they are now.
 * @returns The header with the recipients put back.
 */
export function headerBeforeBots(header: WithId<Communication>, tasks: Task[]): WithId<Communication> {
  const absences = tasks.flatMap((t) => rerouteNotes(t)).filter((r) => r.reason === 'absent');
  if (!absences.length) {
    return header;
  }
  const listed = (header.recipient ?? []).map((r) => r.reference);
  const added = new Set(absences.map((r) => r.to).filter((to) => to && !absences.some((a) => a.from === to)));
  const removed = absences.map((r) => r.from).filter((from) => !listed.includes(from));
  const kept = (header.recipient ?? []).filter((r) => !added.has(r.reference));
  return { ...header, recipient: [...kept, ...[...new Set(removed)].map((reference) => ({ reference }))] };
}
