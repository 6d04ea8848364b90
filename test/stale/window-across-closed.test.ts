// With BUSINESS_HOURS, the hourly run must remind a thread in the run right after its threshold is
// crossed, even when the patient wrote while the clinic was closed (a Saturday evening, the evening
// before a holiday). The window used to start where the longest threshold is reached now, less
// STALE_LOOKBACK_HOURS wall hours: across a weekend that instant jumps back by more than a day from one
// run to the next, so such a message crossed between two runs that both missed it, and waited for the
// daily full reconcile (issue #28, invariant 4; the simulation's seed 1, 30 days, th145).
import { describe, expect, test, vi } from 'vitest';
import { businessClock, parseBusinessHours } from '../../src/lib/business-hours';
import type { Clock } from '../../src/lib/business-hours';
import type { ResponseRule } from '../../src/lib/response-rules';
import { clockHoursBefore, silenceWindow } from '../../src/stale/incremental';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { clinic, HOUR, markReconciled, reminders, run, thread } from './helpers';

// Weekdays 09:00-17:00 UTC, weekends closed, Thanksgiving (Thursday 26 November 2026) closed.
const BUSINESS_HOURS = {
  timeZone: 'UTC',
  hours: {
    mon: [['09:00', '17:00']],
    tue: [['09:00', '17:00']],
    wed: [['09:00', '17:00']],
    thu: [['09:00', '17:00']],
    fri: [['09:00', '17:00']],
    sat: [],
    sun: [],
  },
  closed: ['2026-11-26'],
};
const SECRETS = { BUSINESS_HOURS: JSON.stringify(BUSINESS_HOURS), STALE_AFTER_HOURS: '4' };
const at = (iso: string): number => Date.parse(iso);

useFixedTimeAndQuietConsole(at('2026-11-23T12:00:30Z'));
vi.setConfig({ testTimeout: 60_000 });

/**
 * A clinic whose last full reconcile finished at 03:10 UTC on the runs' day (so the cron runs below
 * are hourly ones), with a thread where the care team spoke a week before and the patient wrote at
 * `wrote`; then the cron runs at each of `runs`.
 * @param wrote - When the patient wrote (ISO).
 * @param runs - The runs' instants (ISO), in order.
 * @returns Per run, how many reminders it created; and how many there are at the end.
 */
async function scenario(wrote: string, runs: string[]): Promise<{ created: number[]; reminders: number }> {
  const first = at(runs[0]);
  const c = await clinic();
  await markReconciled(c, new Date(first - (first % (24 * HOUR)) + 3 * HOUR + 10 * 60_000).toISOString());
  await thread(c, { opened: 30 * 24 * HOUR, replied: first - at(wrote) + 7 * 24 * HOUR, waiting: first - at(wrote) }, first);
  const created: number[] = [];
  for (const instant of runs) {
    vi.setSystemTime(new Date(instant));
    const summary = await run(c, undefined, SECRETS);
    expect(summary).toMatchObject({ mode: 'incremental', failed: 0 });
    created.push(summary.created);
  }
  return { created, reminders: (await reminders(c)).length };
}

describe('the hourly run reminds in the run right after the threshold is crossed, across closed days', () => {
  test('a message on Saturday evening, 4 business hours: crossed Monday 13:00, reminded by the 13:00 run', async () => {
    // Monday 12:00: 3 open hours; 13:00: 4 (crossed). The old window began Sunday 08:00 then 09:00.
    expect(await scenario('2026-11-21T20:00:00Z', ['2026-11-23T12:00:30Z', '2026-11-23T13:00:30Z'])).toEqual({ created: [0, 1], reminders: 1 });
  });

  test('a message the evening before a holiday: crossed the day after it, reminded by that hour\'s run', async () => {
    // Wednesday 20:00, Thursday closed: Friday 12:00 has 3 open hours, 13:00 has 4.
    expect(await scenario('2026-11-25T20:00:00Z', ['2026-11-27T12:00:30Z', '2026-11-27T13:00:30Z'])).toEqual({ created: [0, 1], reminders: 1 });
  });

  test('a run missed: the next run still finds a crossing within STALE_LOOKBACK_HOURS', async () => {
    // Crossed Monday 13:00; the runs of 13:00 to 16:00 did not happen.
    expect(await scenario('2026-11-21T20:00:00Z', ['2026-11-23T12:00:30Z', '2026-11-23T17:00:30Z'])).toEqual({ created: [0, 1], reminders: 1 });
  });
});

describe('the window, hour by hour over weeks with weekends and a holiday', () => {
  const parsed = parseBusinessHours(BUSINESS_HOURS);
  if ('error' in parsed) {
    throw new Error(parsed.error);
  }
  const clock: Clock = businessClock(parsed.hours);
  const rule = (index: number, afterHours: number): ResponseRule => ({ index, afterHours, escalateAfterHours: 24, reminderPriority: 'urgent' });
  const rules = [rule(1, 2), rule(2, 24), rule(0, 72)];

  test('every run\'s window holds every message whose threshold (any rule\'s) was crossed since the run before', () => {
    const misses: string[] = [];
    for (let now = at('2026-11-16T00:00:30Z'); now < at('2026-12-07T00:00:00Z'); now += HOUR) {
      const window = silenceWindow(rules, clock, now, 24);
      // A message sent just before the window must have reached its rule's threshold by the run before.
      for (const r of rules) {
        if (clock.hoursBetween(window.from - 1, now - HOUR) < r.afterHours) {
          misses.push(`${new Date(now).toISOString()} ${r.afterHours} h`);
        }
      }
    }
    expect(misses).toEqual([]);
  });

  test('the look-back reaches crossings up to STALE_LOOKBACK_HOURS wall hours ago, and the window no further than needed', () => {
    for (const now of [at('2026-11-23T08:00:30Z'), at('2026-11-23T13:00:30Z'), at('2026-11-27T10:00:30Z'), at('2026-11-29T12:00:30Z')]) {
      const window = silenceWindow(rules, clock, now, 24);
      const exact = clockHoursBefore(clock, now - 24 * HOUR, 72);
      expect(window.from).toBe(exact);
      expect(window.to).toBe(now - 2 * HOUR);
    }
  });
});
