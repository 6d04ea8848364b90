// Who gave a Task its owner, when the bot's notes cannot tell: the Task's history (`GET
// Task/{id}/_history`, 10 quota points), read only for a Task the decision would move that changed
// after the patient wrote, when neither the bot's notes nor when the Task was made tell who set its
// owner (historyToRead), so a person's choice made after the message is never undone, a Task only
// accepted after it is still decided by availability, and the cost follows what changed. The server does not give a Project's bots
// `meta.author`; the history's versions show the bot's own changes by the note each adds.
import { getReferenceString, getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { isQuotaError, QUOTA_COST } from '../lib/quota';
import { guardOf } from '../lib/read-guard';
import type { ReadLimits, Stop } from '../lib/read-guard';
import { historyToRead, ownerChangeOf } from '../lib/reroute-plan';
import type { OwnerChange, RouteFacts, ThreadToReroute } from '../lib/reroute-plan';

/** Owner changes read in one run, per Task version (a Task changed since is read again). */
export class OwnerHistory {
  private readonly known = new Map<string, OwnerChange>();

  /**
   * Reads the histories the threads' decisions need (once per Task version and run). A history the
   * quota, the deadline or the server does not give is recorded as unread: that Task stays this run.
   * @param medplum - The client.
   * @param threads - Threads whose owners' facts are read.
   * @param route - The owners' facts.
   * @param limits - The run's guard (asked before each history), or a deadline.
   * @param log - Logger.
   */
  async read(medplum: MedplumClient, threads: ThreadToReroute[], route: RouteFacts, limits: ReadLimits, log: BotLog): Promise<void> {
    const guard = guardOf(limits);
    const wanted = threads.flatMap((t) => historyToRead(this.with(t), route)).filter((t) => !this.known.has(key(t)));
    for (const task of wanted) {
      const stop = guard.check(QUOTA_COST.history);
      this.known.set(key(task), stop ? { unread: stop } : await readChange(medplum, task, log));
    }
  }

  /**
   * Whether a history a thread's decision needs was left unread for the quota or the deadline (the
   * thread's work is then deferred to a later run, not decided without it).
   * @param thread - The thread.
   * @returns Why, or undefined.
   */
  stopped(thread: ThreadToReroute): Stop | undefined {
    for (const task of thread.tasks) {
      const change = this.known.get(key(task));
      if (change && 'unread' in change && (change.unread === 'quota' || change.unread === 'deadline')) {
        return change.unread;
      }
    }
    return undefined;
  }

  /**
   * The thread with the owner changes read for its Tasks.
   * @param thread - The thread.
   * @returns The thread for planThread.
   */
  with(thread: ThreadToReroute): ThreadToReroute {
    const changes = new Map<string, OwnerChange>();
    for (const task of thread.tasks) {
      const change = this.known.get(key(task));
      if (change) {
        changes.set(getReferenceString(task), change);
      }
    }
    return changes.size ? { ...thread, ownerChanges: changes } : thread;
  }
}

function key(task: WithId<Task>): string {
  return `${getReferenceString(task)}@${task.meta?.versionId ?? ''}`;
}

async function readChange(medplum: MedplumClient, task: WithId<Task>, log: BotLog): Promise<OwnerChange> {
  const ref = getReferenceString(task);
  try {
    // One page (the server's 100 newest versions): the owner's change is almost always on it.
    const page = await medplum.readHistory('Task', task.id, undefined, { cache: 'no-cache' });
    const versions = (page.entry ?? []).map((e) => e.resource).filter((v): v is WithId<Task> => v?.resourceType === 'Task');
    const complete = page.total === undefined ? !page.link?.some((l) => l.relation === 'next') : versions.length >= page.total;
    return ownerChangeOf(task, versions, complete);
  } catch (err) {
    if (isQuotaError(err)) {
      return { unread: 'quota' };
    }
    const status = getStatus(normalizeOperationOutcome(err));
    const hint = status === 403 ? ": the bot's AccessPolicy must grant Task history (npm run setup)" : '';
    log.warn(`${ref}: its history could not be read (${status ?? 'error'}); the Task stays this run${hint}`);
    return { unread: String(status ?? 'error') };
  }
}
