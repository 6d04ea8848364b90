// Stale-thread reminders bot (cron).
//
// Finds open threads where a patient waits on the care team (from the first patient-side message
// after the care team last spoke, or since the thread began: follow-ups never restart that clock)
// longer than the clinic's response rules allow, and creates one reminder Task per waiting episode.
// Escalates reminders left unanswered, completes those the care team answered, and cancels those
// whose thread was closed.
//
// A run has two parts, one decision (src/stale/plan.ts):
// - hourly (every cron run; `{"full": false}` on `$execute` runs only this): the threads where a
//   patient's wait can cross a threshold now, and those with an open reminder, a hundred at a time
//   (src/stale/incremental.ts); its cost follows what changed, not the history of every open thread;
// - full reconcile (src/stale/reconcile.ts): every open thread, read whole, in passes that continue
//   where a run stopped, recorded on a marker the bot owns; a cron run goes on with it when a pass is
//   in progress or none finished in the last day (the first run after a deploy, a gap in the runs),
//   and in STALE_FULL_RECONCILE_HOUR; `$execute` by hand (or `{"full": true}`) always does.
// Reads never start what the quota left this minute cannot cover (nor do writes), and stop short of
// the deadline; every write is idempotent, so the next run finishes whatever this one left.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { createBotLog, runTimeoutMs } from './lib/bot-runtime';
import { isQuotaError, QUOTA_COST } from './lib/quota';
import type { RunContext } from './stale/chunk';
import { incrementalStep } from './stale/incremental';
import { BOT_NAME } from './stale/plan';
import { ReadGuard } from './stale/reads';
import type { Stop } from './stale/reads';
import { readMarker, readState, reconcileDue, reconcileStep, saveState } from './stale/reconcile';
import { readStaleConfig } from './stale/settings';
import type { StaleConfig } from './stale/settings';
import { emptySummary, finish } from './stale/summary';
import type { StaleSummary } from './stale/summary';

export { EPISODE_SYSTEM, episodeValue, knowsEpisode, legacyEpisodeValues, planStaleRun, REMINDER_CODING, SILENCE_STARTED_URL, silenceStarted } from './stale/plan';
export type { OpenTaskFacts, PlanCounts, PlannedWrite, StaleFacts, StalePlan, ThreadFacts } from './stale/plan';
export { MARKER_IDENTIFIER, reconcileDue } from './stale/reconcile';
export { readStaleConfig } from './stale/settings';
export type { StaleConfig } from './stale/settings';
export type { StaleSummary } from './stale/summary';

/**
 * Stale-thread reminders: one reminder Task per waiting episode, escalation of unanswered
 * reminders, closing of answered ones, and a full reconcile that catches up after any gap.
 *
 * Secrets: `STALE_RULES` (per category and priority), `STALE_AFTER_HOURS` (72) and
 * `ESCALATE_AFTER_HOURS` (24) for threads no rule matches, `BUSINESS_HOURS` (count open hours only),
 * `STALE_LOOKBACK_HOURS` (24), `STALE_FULL_RECONCILE_HOUR` (3, UTC),
 * `BOT_TIMEOUT_SECONDS` (10; setup applies it as the Bot's `timeout`; a lower `timeout` on the Bot wins).
 * @param medplum - The Medplum client, authenticated as the bot.
 * @param event - The cron event (its input the Bot), or `$execute` (`{"full": true|false}`, or empty: a full reconcile).
 * @returns A summary with counts. A run whose writes failed throws, with the summary on the error.
 */
export async function handler(medplum: MedplumClient, event: BotEvent): Promise<StaleSummary> {
  const startedAt = Date.now();
  const log = createBotLog(BOT_NAME);
  const config = readStaleConfig(event, log);
  const timeoutMs = runTimeoutMs(event, log);
  // Stop starting new work with a margin of 20% of the timeout (at least 2 s).
  const stopAt = startedAt + timeoutMs - Math.max(2000, timeoutMs * 0.2);
  const guard = new ReadGuard(medplum, () => Date.now() >= stopAt);
  const run: RunContext = { guard, log, summary: { ...emptySummary(config), mode: 'incremental' }, now: startedAt, handled: new Set() };

  let stop: Stop | undefined;
  try {
    stop = await runParts(medplum, config, run, reconcilePolicy(event.input));
  } catch (err) {
    if (!isQuotaError(err)) {
      throw err;
    }
    // The quota refusing a read (another run spending it) is no failure: the next run goes on.
    stop = 'quota';
  }
  if (stop) {
    const s = run.summary;
    const written = s.created + s.escalated + s.closed + s.cancelled + s.episodeExists;
    log.warn(
      `stopped early (${stop}): ${stop === 'quota' ? 'the FHIR quota ran out while reading' : 'the deadline came while reading'}; ` +
        (written ? 'what was decided is written, the next run goes on' : 'nothing written, the next run starts over')
    );
    s.stoppedEarly = true;
    s.stoppedBy = stop;
  }
  return finish(run.summary, log);
}

/**
 * The hourly part, then the full reconcile when the run does one.
 * @param medplum - The client.
 * @param config - Settings.
 * @param run - The run.
 * @param policy - Whether it reconciles.
 * @returns Why the hourly part stopped before its end, if it did (a reconcile that pauses says so in its report).
 */
async function runParts(medplum: MedplumClient, config: StaleConfig, run: RunContext, policy: 'always' | 'if-due' | 'never'): Promise<Stop | undefined> {
  const first = run.guard.check();
  if (first) {
    return first;
  }
  const marker = policy === 'never' ? undefined : await readMarker(medplum);
  const state = readState(marker);
  const reconcile = policy === 'always' || (policy === 'if-due' && reconcileDue(state, run.now, config.fullReconcileHour));
  // The marker's write is kept out of what reads and reminders may spend.
  run.guard.reserve = reconcile ? QUOTA_COST.conditionalCreate : 0;
  const stop = await incrementalStep(medplum, config, run);
  if (!reconcile || stop) {
    return stop;
  }
  run.summary.mode = 'full';
  const { state: next, report } = await reconcileStep(medplum, config, run, state);
  run.summary.reconcile = report;
  run.log.info(
    `full reconcile (pass started ${report.passStarted}): ${report.threads} thread(s) this run, ` +
      (report.complete ? 'pass complete' : `continues next run (${report.pausedBy})`)
  );
  if (report.threads || report.complete || !marker) {
    await saveState(medplum, marker, next, run);
  }
  return undefined;
}

/**
 * Whether a run reconciles: `{"full": true}` or a run by hand (an empty body) always, `{"full":
 * false}` never, the cron (its input is the Bot) when due (see reconcileDue).
 * @param input - `event.input`.
 * @returns always, if-due or never.
 */
export function reconcilePolicy(input: unknown): 'always' | 'if-due' | 'never' {
  const value = input as { resourceType?: string; full?: unknown } | undefined;
  if (typeof value?.full === 'boolean') {
    return value.full ? 'always' : 'never';
  }
  return value?.resourceType === 'Bot' || value?.resourceType === 'Cron' ? 'if-due' : 'always';
}
