// Which Task is which, in the replay and in the Project alike. A bot's Task is named by its episode
// (the replay makes its own Task for an episode, with its own id), any other Task by its id.
import type { Task } from '@medplum/fhirtypes';
import { RESPONSE_EPISODE_SYSTEM } from '../lib/response-lifecycle';
import { EPISODE_SYSTEM, isReminder } from '../stale/plan';

/**
 * A Task's name across the replay and the Project.
 * @param task - A Task.
 * @returns `reminder:<episode>`, `response:<episode>`, or `task:<id>`.
 */
export function taskKey(task: Task): string {
  const reminder = task.identifier?.find((i) => i.system === EPISODE_SYSTEM)?.value;
  if (reminder && isReminder(task)) {
    return `reminder:${reminder}`;
  }
  const response = task.identifier?.find((i) => i.system === RESPONSE_EPISODE_SYSTEM)?.value;
  return response ? `response:${response}` : `task:${task.id}`;
}

/**
 * Whether one of the bots made a Task: a reminder named by its episode, or a lifecycle Task.
 * @param task - A Task.
 * @returns True for the bots' own Tasks (the replay makes its own instead).
 */
export function madeByBots(task: Task): boolean {
  return !taskKey(task).startsWith('task:');
}
