// Catching up after a gap: the first run after a deploy, and any run after the bot was off,
// reconciles what it missed (the bot's marker says when the last full reconcile finished), whatever
// hour it runs at, and whatever hours its cron reaches.
import type { Basic, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { reconcileDue } from '../../src/stale-thread-reminders';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { clinic, CRON, DAY, FINISHED_URL, HOUR, markers, markReconciled, PASS_STARTED_URL, reminders, run, thread } from './helpers';

const NOW = Date.parse('2026-11-27T15:00:00.000Z'); // 15:00 UTC: not the full-reconcile hour (03 by default)
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const finished = (m: Basic): string | undefined => m.extension?.find((e) => e.url === FINISHED_URL)?.valueInstant;

useFixedTimeAndQuietConsole(NOW);

describe('the first run after a deploy', () => {
  test('a thread a week stale before the deploy is reminded on the first cron run, outside the reconcile hour', { timeout: 60_000 }, async () => {
    const c = await clinic();
    const forgotten = await thread(c, { opened: 30 * DAY, replied: 20 * DAY, waiting: 7 * DAY }, NOW);
    await thread(c, { opened: 30 * DAY, replied: DAY }, NOW); // answered: nothing to do
    const first = await run(c);
    expect(first).toMatchObject({ mode: 'full', created: 1, failed: 0, reconcile: { threads: 2, complete: true } });
    expect((await reminders(c)).map((t) => t.focus?.reference)).toEqual([`Communication/${forgotten.id}`]);
    // The bot made its marker, tagged as the project's, recording when the pass finished.
    const [marker] = await markers(c);
    expect(marker.meta?.tag).toEqual([{ system: 'urn:medplum-messaging-bots', code: 'stale-thread-reminders' }]);
    expect(finished(marker)).toBe(ago(0));
    expect(marker.extension?.some((e) => e.url === PASS_STARTED_URL)).toBe(false);

    // The next hour: nothing to catch up, an hourly run (no header is read).
    vi.setSystemTime(new Date(NOW + HOUR));
    c.server.resetCounts();
    expect(await run(c)).toMatchObject({ mode: 'incremental', created: 0, alreadyReminded: 1 });
    expect(c.server.requests.some((r) => new URL(r.url).searchParams.get('part-of:missing') === 'true')).toBe(false);
    expect(await markers(c)).toHaveLength(1);
  });

  test('two first runs at once make one marker and one reminder', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await thread(c, { opened: 30 * DAY, waiting: 7 * DAY }, NOW);
    const [a, b] = await Promise.all([run(c), run(c)]);
    expect(a.created + b.created).toBe(1);
    expect(await markers(c)).toHaveLength(1);
    expect(await reminders(c)).toHaveLength(1);
  });
});

describe('after the bot was off', () => {
  test('off for two days: the first run back reconciles, at whatever hour', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await markReconciled(c, ago(2 * DAY));
    // Went stale while the bot was off, and left the hourly window meanwhile.
    const missed = await thread(c, { opened: 30 * DAY, replied: 10 * DAY, waiting: 5 * DAY }, NOW);
    expect(await run(c)).toMatchObject({ mode: 'full', created: 1, reconcile: { complete: true } });
    expect((await reminders(c))[0].focus).toEqual({ reference: `Communication/${missed.id}` });
    expect(finished((await markers(c))[0])).toBe(ago(0));
  });

  test('a cron that never reaches STALE_FULL_RECONCILE_HOUR still reconciles once a day', { timeout: 60_000 }, async () => {
    const c = await clinic();
    const secrets = { STALE_FULL_RECONCILE_HOUR: '3' };
    // Runs every hour from 15:00 to 23:00 only (a clinic's cron for its working evenings).
    const day = (d: number, h: number): number => NOW + d * DAY + (h - 15) * HOUR;
    const modes: string[] = [];
    for (const d of [0, 1]) {
      for (let h = 15; h <= 23; h++) {
        vi.setSystemTime(new Date(day(d, h)));
        if (d === 1 && h === 15) {
          // Between the two days, a thread went stale out of every hourly window.
          await thread(c, { opened: 30 * DAY, replied: 20 * DAY, waiting: 6 * DAY }, day(1, 15));
        }
        const summary = await run(c, CRON, secrets);
        modes.push(`${d}:${h}:${summary.mode}:${summary.created}`);
      }
    }
    // The first run (no marker yet) and the first a day after it reconcile; the others are hourly.
    expect(modes.filter((m) => m.includes(':full:'))).toEqual(['0:15:full:0', '1:15:full:1']);
  });
});

describe('when a cron run reconciles', () => {
  const at = (iso: string): number => Date.parse(iso);
  test.each<[string, { finished?: number; pass?: { started: number } }, string, boolean]>([
    ['never reconciled (the first run after a deploy)', {}, '2026-11-27T15:00:00Z', true],
    ['a pass in progress', { finished: at('2026-11-27T14:00:00Z'), pass: { started: at('2026-11-27T14:00:00Z') } }, '2026-11-27T15:00:00Z', true],
    ['finished an hour ago', { finished: at('2026-11-27T14:00:00Z') }, '2026-11-27T15:00:00Z', false],
    ['finished a day ago', { finished: at('2026-11-26T15:00:00Z') }, '2026-11-27T15:00:00Z', true],
    ['finished 23 hours ago, in the reconcile hour', { finished: at('2026-11-26T04:00:00Z') }, '2026-11-27T03:00:00Z', true],
    ['finished this reconcile hour already', { finished: at('2026-11-27T03:05:00Z') }, '2026-11-27T03:50:00Z', false],
  ])('%s: %s', (_name, state, now, due) => {
    expect(reconcileDue(state, at(now), 3)).toBe(due);
  });

  test('{"full": false} never reconciles, even when due; {"full": true} always does', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await thread(c, { opened: 30 * DAY, waiting: 7 * DAY }, NOW);
    expect(await run(c, { full: false })).toMatchObject({ mode: 'incremental', created: 0 });
    expect(await markers(c)).toHaveLength(0);
    await markReconciled(c, ago(HOUR));
    expect(await run(c, { full: true })).toMatchObject({ mode: 'full', created: 1 });
    const reminder = (await reminders(c))[0] as Task;
    expect(reminder.status).toBe('requested');
  });
});
