// What a run of the real-time bot did: the summary types, the tallies of write outcomes, and the
// one-line descriptions that go into the run's AuditEvent (ids and codes only, never names).
import type { WriteOutcome } from '../lib/fhir';
import type { BotLog } from '../lib/bot-runtime';
import { availabilityAt } from '../lib/availability';
import type { LifecyclePlan } from '../lib/response-lifecycle';
import type { RouteFacts, TaskDecision, ThreadPlan } from '../lib/reroute-plan';

/** Work left for a later run. */
export interface Deferred {
  /** The quota left this minute could not cover it. */
  quota: number;
  /** The Bot's timeout was near. */
  deadline: number;
}

/** What the response-Task lifecycle did (RESPONSE_TASKS=on). */
export interface LifecycleCounts {
  /** Response Tasks opened. */
  opened: number;
  /** Conditional creates that found the episode's Task already there (redelivery, a concurrent run). */
  existed: number;
  completed: number;
  cancelled: number;
}

/** What an event run did, returned to the caller and logged into the run's AuditEvent. */
export interface RerouteSummary extends LifecycleCounts {
  mode: 'event';
  outcome: 'ignored' | 'done' | 'deferred' | 'failed';
  reason?: string;
  thread?: string;
  message?: string;
  tasksExamined: number;
  rerouted: number;
  kept: number;
  /** Earlier half-done reroutes finished (owner removed from the header). */
  repaired: number;
  conflicts: number;
  failed: number;
  deferred: Deferred;
  decisions: TaskDecision[];
}

/** What a sweep did. */
export interface SweepSummary extends LifecycleCounts {
  mode: 'sweep';
  tasksScanned: number;
  /** Threads read (their header and messages): those with an open Task a person owns, or a reroute record. */
  threadsRead: number;
  /** Of those, threads where the patient side wrote last. */
  waiting: number;
  ownersChecked: number;
  /** Owners unavailable now. */
  ownersUnavailable: number;
  rerouted: number;
  repaired: number;
  kept: number;
  /** Tasks kept because the owner was on duty when the patient wrote (the end of a shift hands nothing off). */
  keptOnDuty: number;
  conflicts: number;
  failed: number;
  /** Threads left for the next sweep. */
  deferred: Deferred;
  stoppedEarly: boolean;
}

/** Counts of one thread's applied writes. */
export interface PlanTally {
  rerouted: number;
  repaired: number;
  conflicts: number;
  failed: number;
  deferred?: keyof Deferred;
}

/**
 * Counts what a thread's writes did.
 * @param plan - The thread's plan.
 * @param outcomes - One outcome per entry.
 * @param log - Logger.
 * @returns The counts.
 */
export function tallyPlan(plan: ThreadPlan, outcomes: WriteOutcome[], log: BotLog): PlanTally {
  const result: PlanTally = { rerouted: 0, repaired: 0, conflicts: 0, failed: 0 };
  const moved = plan.decisions.filter((d) => d.action !== 'kept');
  plan.entries.forEach((entry, i) => {
    const outcome = outcomes[i];
    const isHeader = i >= moved.length;
    if (outcome.kind === 'applied') {
      if (isHeader) {
        result.repaired += plan.repaired.length;
      } else {
        result.rerouted++;
      }
    } else if (outcome.kind === 'conflict') {
      result.conflicts++;
      log.info(`${entry.request?.url} changed meanwhile; decided again next time`);
    } else if (outcome.kind === 'deferred') {
      result.deferred = outcome.why;
    } else {
      result.failed++;
      log.warn(`write ${entry.request?.url} failed (${outcome.status}): ${outcome.error}`);
    }
  });
  return result;
}

/**
 * Adds a plan's decisions to the event summary, keeping earlier attempts' moves.
 * @param summary - The event summary.
 * @param plan - This attempt's plan.
 */
export function mergeDecisions(summary: RerouteSummary, plan: ThreadPlan): void {
  const moved = summary.decisions.filter((d) => d.action !== 'kept');
  summary.decisions = [...moved, ...plan.decisions.filter((d) => !moved.some((m) => m.task === d.task))];
}

/**
 * Adds an attempt's write outcomes to the event summary.
 * @param summary - The event summary.
 * @param plan - The attempt's plan.
 * @param outcomes - Its write outcomes.
 * @param log - Logger.
 * @returns The number of conflicts (a reason to read again).
 */
export function tallyWrites(summary: RerouteSummary, plan: ThreadPlan, outcomes: WriteOutcome[], log: BotLog): number {
  const result = tallyPlan(plan, outcomes, log);
  summary.rerouted += result.rerouted;
  summary.repaired += result.repaired;
  summary.failed += result.failed;
  if (result.deferred) {
    summary.deferred[result.deferred]++;
  }
  // Decisions whose patch did not apply are not moves.
  const moved = plan.decisions.filter((d) => d.action !== 'kept');
  moved.forEach((d, i) => {
    if (outcomes[i].kind !== 'applied') {
      summary.decisions = summary.decisions.map((s) => (s.task === d.task ? { ...s, action: 'kept', reason: `${d.action} not applied (${outcomes[i].kind})` } : s));
    }
  });
  return result.conflicts;
}

const NO_LIFECYCLE: LifecycleCounts = { opened: 0, existed: 0, completed: 0, cancelled: 0 };

export function emptyEventSummary(outcome: RerouteSummary['outcome']): RerouteSummary {
  return {
    ...NO_LIFECYCLE,
    mode: 'event',
    outcome,
    tasksExamined: 0,
    rerouted: 0,
    kept: 0,
    repaired: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    decisions: [],
  };
}

export function emptySweepSummary(): SweepSummary {
  return {
    ...NO_LIFECYCLE,
    mode: 'sweep',
    tasksScanned: 0,
    threadsRead: 0,
    waiting: 0,
    ownersChecked: 0,
    ownersUnavailable: 0,
    rerouted: 0,
    repaired: 0,
    kept: 0,
    keptOnDuty: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    stoppedEarly: false,
  };
}

/**
 * One log line per decision.
 * @param d - The decision.
 * @returns The line.
 */
export function describeDecision(d: TaskDecision): string {
  const target = d.action === 'to-cover' ? ` -> ${d.cover}` : '';
  return `${d.task} owner=${d.owner ?? 'none'} ${d.action}${target}: ${d.reason}`;
}

/**
 * Logs why a configured cover did not take a Task that went to the pool.
 * @param plan - A thread's plan.
 * @param route - The facts it was decided with.
 * @param log - Logger.
 */
export function logCoverMisses(plan: ThreadPlan, route: RouteFacts, log: BotLog): void {
  for (const d of plan.decisions.filter((x) => x.action === 'to-pool' && x.owner && route.coverage[x.owner])) {
    const cover = route.coverage[d.owner as string];
    log.info(`cover ${cover} for ${d.owner} not available (${availabilityAt(route.owner(cover), route.now, route.serviceTypes).reason}); using the pool`);
  }
}

/**
 * Counts what a thread's lifecycle writes did, into a summary.
 * @param summary - Event or sweep summary (changed).
 * @param plan - The lifecycle plan.
 * @param outcomes - One outcome per entry.
 * @param log - Logger.
 * @returns Write counts for the run's totals.
 */
export function tallyLifecycle(summary: LifecycleCounts, plan: LifecyclePlan, outcomes: WriteOutcome[], log: BotLog): PlanTally {
  const result: PlanTally = { rerouted: 0, repaired: 0, conflicts: 0, failed: 0 };
  plan.decisions.forEach((d, i) => {
    const outcome = outcomes[i];
    const what = d.action === 'open' ? `${plan.thread} response Task (episode ${d.task})` : d.task;
    if (outcome.kind === 'applied') {
      if (d.action === 'open') {
        const created = outcome.status === '201';
        summary[created ? 'opened' : 'existed']++;
        log.info(`${created ? 'opened' : 'already open or done:'} ${outcome.resource?.id ? `Task/${outcome.resource.id}` : what} -> ${d.target ?? 'pool'} (${d.reason})`);
      } else {
        summary[d.action === 'complete' ? 'completed' : 'cancelled']++;
        log.info(`${d.action === 'complete' ? 'completed' : 'cancelled'} ${d.task}${d.target ? ` by ${d.target}` : ''} (${d.reason})`);
      }
    } else if (outcome.kind === 'conflict' && d.action === 'open' && outcome.status === '412') {
      summary.existed++; // several Tasks carry the episode's identifier: one exists
      log.info(`${what}: several Tasks match this episode; none created`);
    } else if (outcome.kind === 'conflict') {
      result.conflicts++;
      log.info(`${d.task} changed meanwhile; decided again next time`);
    } else if (outcome.kind === 'deferred') {
      result.deferred = outcome.why;
    } else {
      result.failed++;
      log.warn(`${d.action} ${what} failed (${outcome.status}): ${outcome.error}`);
    }
  });
  return result;
}

/**
 * The lifecycle's counts for a summary line, when it did anything.
 * @param c - The counts.
 * @returns E.g. " opened=1 existed=0 completed=0 cancelled=0", or "".
 */
export function lifecycleCounts(c: LifecycleCounts): string {
  return c.opened + c.existed + c.completed + c.cancelled ? ` opened=${c.opened} existed=${c.existed} completed=${c.completed} cancelled=${c.cancelled}` : '';
}
