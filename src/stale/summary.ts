// What a stale run did: the summary it returns and logs (the AuditEvent's line), tallied from the
// plan's counts and the writes' outcomes.
import { RunFailedError } from '../lib/bot-runtime';
import type { BotLog } from '../lib/bot-runtime';
import type { WriteOutcome } from '../lib/fhir';
import { BOT_NAME } from './plan';
import type { PlanCounts, PlannedWrite } from './plan';
import type { ReconcileReport } from './reconcile';
import type { StaleConfig } from './settings';

/** What a run did. */
export interface StaleSummary extends PlanCounts {
  created: number;
  /** Conditional creates that found the episode's reminder already there (a completed one, or an overlapping run's). */
  episodeExists: number;
  escalated: number;
  closed: number;
  /** Reminders cancelled because their thread was closed. */
  cancelled: number;
  /** Version-guarded patches whose resource changed meanwhile; the next run decides again. */
  conflicts: number;
  failed: number;
  /** Writes left for the next run: the quota left this minute could not cover them, or the deadline was near. */
  deferred: { quota: number; deadline: number };
  stoppedEarly: boolean;
  /** Why the run stopped before writing anything, when it did. */
  stoppedBy?: 'quota' | 'deadline';
  clock: 'wall' | 'business';
  /** incremental (the hourly part only) or full (the run reconciled too). */
  mode: 'incremental' | 'full';
  /** What the full reconcile did, when the run did one. */
  reconcile?: ReconcileReport;
}

/**
 * Adds a chunk's counts to a run's summary.
 * @param summary - The run's summary, changed in place.
 * @param counts - The chunk's counts.
 */
export function addCounts(summary: StaleSummary, counts: PlanCounts): void {
  summary.threadsRead += counts.threadsRead;
  summary.stale += counts.stale;
  summary.alreadyReminded += counts.alreadyReminded;
  summary.ignoredMessages += counts.ignoredMessages;
  for (const key of Object.keys(counts.skipped) as (keyof PlanCounts['skipped'])[]) {
    summary.skipped[key] += counts.skipped[key];
  }
  for (const [rule, n] of Object.entries(counts.byRule)) {
    summary.byRule[rule] = (summary.byRule[rule] ?? 0) + n;
  }
}

/**
 * Logs a run's summary line and fails the run when writes failed.
 * @param summary - The run's summary.
 * @param log - Logger.
 * @returns The summary.
 */
export function finish(summary: StaleSummary, log: BotLog): StaleSummary {
  const deferred = summary.deferred.quota + summary.deferred.deadline;
  summary.stoppedEarly ||= deferred > 0;
  if (deferred) {
    log.warn(`${deferred} write(s) or thread(s) left for the next run (quota: ${summary.deferred.quota}, deadline: ${summary.deferred.deadline})`);
  }
  log.info(
    `threads=${summary.threadsRead} stale=${summary.stale} created=${summary.created} episodeExists=${summary.episodeExists} ` +
      `alreadyReminded=${summary.alreadyReminded} escalated=${summary.escalated} closed=${summary.closed} cancelled=${summary.cancelled} ` +
      `skipped=${JSON.stringify(summary.skipped)} ignoredMessages=${summary.ignoredMessages} byRule=${JSON.stringify(summary.byRule)} ` +
      `clock=${summary.clock} mode=${summary.mode} conflicts=${summary.conflicts} failed=${summary.failed} deferred=${JSON.stringify(summary.deferred)}`
  );
  if (summary.failed) {
    throw new RunFailedError(`${BOT_NAME}: ${summary.failed} write(s) failed; the next run retries them`, summary);
  }
  return summary;
}

/**
 * Counts a write's outcome and logs it (ids only).
 * @param summary - The run's summary, changed in place.
 * @param write - The write.
 * @param outcome - What became of it.
 * @param log - Logger.
 */
export function tally(summary: StaleSummary, write: PlannedWrite, outcome: WriteOutcome, log: BotLog): void {
  const target = write.kind === 'create' ? write.thread : write.entry.request?.url;
  if (outcome.kind === 'deferred') {
    summary.deferred[outcome.why]++;
  } else if (outcome.kind === 'applied') {
    if (write.kind === 'create') {
      if (outcome.status === '201') {
        summary.created++;
        log.info(`created ${outcome.resource ? `Task/${outcome.resource.id}` : 'reminder'} for ${write.thread}`);
      } else {
        summary.episodeExists++;
      }
    } else {
      const key = ({ escalate: 'escalated', close: 'closed', cancel: 'cancelled' } as const)[write.kind];
      summary[key]++;
      log.info(`${key} ${target}`);
    }
  } else if (outcome.kind === 'conflict' && write.kind === 'create' && outcome.status === '412') {
    // 412: the episode's identifier matches several reminders (made by hand, or by an old version): one exists.
    summary.episodeExists++;
    log.info(`${target}: several reminders match this silence; none created`);
  } else if (outcome.kind === 'conflict') {
    summary.conflicts++;
    log.info(`${target} changed meanwhile; the next run decides again`);
  } else {
    summary.failed++;
    log.warn(`${write.kind} for ${target} failed (${'status' in outcome ? outcome.status : 'conflict'}): ${outcome.error}`);
  }
}

/**
 * A summary of nothing done yet.
 * @param config - Settings (the clock's kind).
 * @returns The summary.
 */
export function emptySummary(config: StaleConfig): StaleSummary {
  return {
    threadsRead: 0,
    stale: 0,
    alreadyReminded: 0,
    skipped: { noSubject: 0, recent: 0, careTeamLast: 0, noPersonMessage: 0 },
    ignoredMessages: 0,
    byRule: {},
    created: 0,
    episodeExists: 0,
    escalated: 0,
    closed: 0,
    cancelled: 0,
    conflicts: 0,
    failed: 0,
    deferred: { quota: 0, deadline: 0 },
    stoppedEarly: false,
    clock: config.clock.kind,
    mode: 'full',
  };
}
