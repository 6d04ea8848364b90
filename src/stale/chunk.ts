// One chunk of threads, decided and written: the step both kinds of run repeat. The plan is pure; a
// thread it cannot decide yet (its episode needs a look-back, or its open Tasks were not read) is
// read further, within the run's guard, and the chunk decided again; then its writes are applied
// (never starting what the quota left cannot cover) and tallied.
import type { MedplumClient } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { applyWrites, OPEN_TASK_STATUSES, referenceType } from '../lib/fhir';
import { isReminder, planStaleRun } from './plan';
import type { StaleFacts, StalePlan, ThreadFacts } from './plan';
import { ignoredIn, lookBack, readAll, TASK_ELEMENTS } from './reads';
import type { ReadGuard, Stop } from './reads';
import type { StaleConfig } from './settings';
import { addCounts, tally } from './summary';
import type { StaleSummary } from './summary';

/** What a run carries from chunk to chunk. */
export interface RunContext {
  guard: ReadGuard;
  log: BotLog;
  summary: StaleSummary;
  /** The decision instant, epoch milliseconds. */
  now: number;
  /** Threads decided this run (a full reconcile skips those the hourly part decided). */
  handled: Set<string>;
}

/**
 * Decides a chunk, reading what the plan still needs, and writes it.
 * @param medplum - The client.
 * @param facts - The chunk's facts (completed in place).
 * @param config - Settings.
 * @param run - The run.
 * @returns done: every thread decided and every write applied (none deferred or failed); else why not.
 */
export async function decideAndWrite(medplum: MedplumClient, facts: StaleFacts, config: StaleConfig, run: RunContext): Promise<{ done: boolean; stop?: Stop }> {
  const { plan, stop } = await decide(medplum, facts, config, run);
  for (const ref of facts.threads.keys()) {
    run.handled.add(ref);
  }
  addCounts(run.summary, plan.counts);
  const before = { ...run.summary.deferred, failed: run.summary.failed };
  const outcomes = await applyWrites(
    medplum,
    plan.writes.map((w) => [w.entry]),
    { shouldStop: run.guard.nearDeadline, reserve: run.guard.reserve }
  );
  plan.writes.forEach((write, i) => tally(run.summary, write, outcomes[i][0], run.log));
  const deferred = run.summary.deferred;
  const left = deferred.quota > before.quota || deferred.deadline > before.deadline || run.summary.failed > before.failed;
  return { done: !stop && !left, stop: stop ?? (deferred.quota > before.quota ? 'quota' : deferred.deadline > before.deadline ? 'deadline' : undefined) };
}

/**
 * Plans a chunk; looks back into threads whose episode the read range cannot name, reads the open
 * Tasks of threads about to be reminded whose Tasks were not read, and plans again. Threads still
 * undecided (the guard stopped the reads) are counted as deferred: the next run decides them.
 * @param medplum - The client.
 * @param facts - The chunk's facts (completed in place).
 * @param config - Settings.
 * @param run - The run.
 * @returns The plan, and why reading stopped, if it did.
 */
export async function decide(medplum: MedplumClient, facts: StaleFacts, config: StaleConfig, run: RunContext): Promise<{ plan: StalePlan; stop?: Stop }> {
  const now = new Date(run.now).toISOString();
  let plan = planStaleRun(facts, config, now);
  let stop: Stop | undefined;
  const stuck = new Set<string>();
  if (plan.lookback.length) {
    for (const ref of plan.lookback) {
      const outcome = await lookBack(medplum, facts.threads.get(ref) as ThreadFacts, run.guard);
      if (outcome === 'quota' || outcome === 'deadline') {
        stop = outcome;
        break;
      }
      if (outcome === 'stuck') {
        stuck.add(ref);
        run.log.warn(`${ref}: its older messages share one stored instant; the full reconcile decides it`);
      }
    }
    facts.ignoredMessages = ignoredIn(facts.threads);
    plan = planStaleRun(facts, config, now);
  }
  if (plan.tasks.length && !stop) {
    const tasks = await readAll<Task>(medplum, 'Task', { focus: plan.tasks.join(','), status: OPEN_TASK_STATUSES.join(','), _elements: TASK_ELEMENTS }, run.guard, run.log);
    if (typeof tasks === 'string') {
      stop = tasks;
    } else {
      for (const ref of plan.tasks) {
        (facts.threads.get(ref) as ThreadFacts).tasksUnread = false;
      }
      for (const task of tasks) {
        const thread = task.focus?.reference;
        if (referenceType(task.focus) === 'Communication' && thread && facts.threads.has(thread)) {
          facts.openTasks.push({ task, thread, isReminder: isReminder(task) });
        }
      }
      plan = planStaleRun(facts, config, now);
    }
  }
  const undecided = [...plan.lookback.filter((ref) => !stuck.has(ref)), ...plan.tasks].length;
  if (undecided) {
    run.summary.deferred[stop ?? 'deadline'] += undecided;
  }
  return { plan, stop };
}
