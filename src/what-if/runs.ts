// When the bots' scheduled runs actually ran, from their run history (the AuditEvent the server
// records for each Bot run, read as `npm run status` reads it): the replay runs the sweep and the
// reminders at those instants instead of at exact hours, so that its runs are the bots' runs (a
// reminders cron every 10 minutes, a sweep at :07, a run started by hand, an hour with no run).
// Pure, but for the read at the end.
import type { MedplumClient } from '@medplum/core';
import type { AuditEvent, Bot } from '@medplum/fhirtypes';
import { describeRun } from '../admin/run-history';
import { readPages } from '../lib/fhir';
import { QUOTA_COST } from '../lib/quota';
import { OOO_BOT_NAME } from '../lib/reroute-plan';
import { BOT_NAME } from '../stale/plan';
import type { QuotaPacer } from '../sla/quota-pacer';

/** The instants (epoch ms, ascending) the scheduled runs started. */
export interface RunInstants {
  /** The out-of-office bot's sweeps (its cron, or `$execute` by hand). */
  sweep: number[];
  /** The reminders bot's runs (hourly or full). */
  reminders: number[];
}

/** The run history as read, or why it could not be. */
export type RunHistory = { runs: RunInstants; bots: number } | { unread: string };

/**
 * The scheduled runs among Bot run AuditEvents: a run that logged a sweep summary is a sweep, one
 * that logged a reminders summary is a reminders run; event runs and runs that logged nothing are
 * left out. A run's instant is when it started (period.start, else recorded).
 * @param events - AuditEvents of the two Bots' runs.
 * @param window - Only runs in [from, until) count.
 * @param window.from - Start, epoch ms.
 * @param window.until - End, epoch ms (exclusive).
 * @returns The instants, ascending.
 */
export function runInstants(events: AuditEvent[], window: { from: number; until: number }): RunInstants {
  const runs: RunInstants = { sweep: [], reminders: [] };
  for (const event of events) {
    const at = Date.parse(event.period?.start ?? event.recorded ?? '');
    if (!(at >= window.from && at < window.until)) {
      continue;
    }
    const { kind } = describeRun(event);
    if (kind === 'sweep') {
      runs.sweep.push(at);
    } else if (kind === 'hourly' || kind === 'full' || kind === 'stale') {
      runs.reminders.push(at);
    }
  }
  runs.sweep.sort((a, b) => a - b);
  runs.reminders.sort((a, b) => a - b);
  return runs;
}

/**
 * How long after the window's end a run that started in it may have been recorded: its AuditEvent's
 * `date` is when it ended, and a Bot runs 15 minutes at most. A run that started before `until` and
 * ended after it is one of the period's (the Tasks it made are counted as the bots').
 */
export const RUN_RECORDED_WITHIN_MS = 15 * 60_000;

/**
 * Reads the two Bots' run history over a window. Needs read access to Bot and AuditEvent (a Project
 * admin has it); without it, or when the Project has no Bot of these names, says why, and the
 * replay runs the bots every hour instead.
 * @param medplum - The client.
 * @param pacer - Paces each search by the quota.
 * @param window - The replay's window.
 * @param window.from - Start, epoch ms.
 * @param window.until - End, epoch ms (exclusive).
 * @returns The instants, or why they were not read.
 */
export async function readRunHistory(medplum: MedplumClient, pacer: QuotaPacer, window: { from: number; until: number }): Promise<RunHistory> {
  try {
    const bots: Bot[] = [];
    for (const name of [OOO_BOT_NAME, BOT_NAME]) {
      const found = await pacer.run(QUOTA_COST.search, () => medplum.searchResources('Bot', { 'name:exact': name, _elements: 'name' }, { cache: 'no-cache' }));
      bots.push(...found.filter((b) => b.name === name));
    }
    if (!bots.some((b) => b.name === OOO_BOT_NAME) || !bots.some((b) => b.name === BOT_NAME)) {
      return { unread: `the Project has not both Bots, ${OOO_BOT_NAME} and ${BOT_NAME}` };
    }
    const events: AuditEvent[] = [];
    const query = [
      ['entity', bots.map((b) => `Bot/${b.id}`).join(',')],
      ['date', `ge${new Date(window.from).toISOString()}`],
      ['date', `lt${new Date(window.until + RUN_RECORDED_WITHIN_MS).toISOString()}`],
      ['_elements', 'period,recorded,outcome,outcomeDesc,entity'],
    ] as [string, string][];
    const pages = readPages(medplum, 'AuditEvent', query);
    for (;;) {
      const page = await pacer.run(QUOTA_COST.search, () => pages.next());
      if (page.done) {
        break;
      }
      page.value.entry?.forEach((e) => e.resource && events.push(e.resource as AuditEvent));
    }
    return { runs: runInstants(events, window), bots: bots.length };
  } catch (err) {
    return { unread: err instanceof Error ? err.message : String(err) };
  }
}
