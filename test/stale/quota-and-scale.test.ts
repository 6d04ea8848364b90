// The quota and long histories: no request a run makes is refused for quota (reads and writes both
// check what is left first), and threads of many messages are read by cursor, never past the
// server's 10,000 offset limit, in hourly runs and in the full reconcile alike.
import { describe, expect, test, vi } from 'vitest';
import type { StaleSummary } from '../../src/stale-thread-reminders';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { seedMessage, seedThread } from '../harness/fixtures';
import { clinic, CRON, DAY, HOUR, markReconciled, perThread, reminders, run, thread, throttled } from './helpers';
import type { Clinic } from './helpers';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');
const ago = (ms: number, at = NOW): string => new Date(at - ms).toISOString();

useFixedTimeAndQuietConsole(NOW);

describe('the FHIR quota, hourly runs', () => {
  test('1,000 due threads under 50,000 points a minute: no request refused (429), all reminded once over the runs', { timeout: 600_000 }, async () => {
    const c = await clinic(); // the server's default quota: 50,000 points a minute
    await markReconciled(c, ago(HOUR));
    for (let i = 0; i < 1000; i++) {
      // Answered ten days ago; the patient wrote 73 hours ago: due now, in the hourly window.
      await thread(c, { opened: 30 * DAY + i * 1000, replied: 10 * DAY + i, waiting: 73 * HOUR + i }, NOW);
    }
    c.server.resetCounts();
    const runs: StaleSummary[] = [];
    while (runs.reduce((n, r) => n + r.created, 0) < 1000 && runs.length < 10) {
      vi.setSystemTime(new Date(NOW + runs.length * HOUR)); // hourly: a new quota minute each run
      runs.push(await run(c));
      expect(throttled(c.server)).toEqual([]);
    }
    expect(runs.every((r) => r.mode === 'incremental' && r.failed === 0)).toBe(true);
    // Each reminder costs its look-back (20) and its conditional create (120): 140,000 points, three runs or four.
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.length).toBeLessThanOrEqual(4);
    expect(runs.slice(0, -1).every((r) => r.stoppedEarly && r.deferred.quota > 0)).toBe(true);
    const counts = perThread(await reminders(c));
    expect(counts.size).toBe(1000);
    expect(Math.max(...counts.values())).toBe(1);
  });

  test('another run spent the quota: the next read is not started, nothing refused', { timeout: 60_000 }, async () => {
    const c = await clinic({ quota: { perCaller: 1_000 } });
    await markReconciled(c, ago(HOUR));
    for (let i = 0; i < 5; i++) {
      await thread(c, { opened: 30 * DAY + i, replied: 10 * DAY, waiting: 80 * HOUR + i }, NOW);
    }
    c.server.beforeRequest = (r) => {
      if (r.key === 'GET Task') {
        c.server.quota.begin('bot').charge(c.server.quota.remaining('bot') - 30); // a concurrent run
      }
    };
    const summary = await run(c);
    expect(summary).toMatchObject({ stoppedEarly: true, stoppedBy: 'quota', created: 0, failed: 0 });
    expect(throttled(c.server)).toEqual([]);
  });
});

/** 100 threads of 120 messages each (alternating, over the last 20 days), the patient last in every fourth. */
async function longThreads(c: Clinic, at: number): Promise<string[]> {
  const waiting: string[] = [];
  for (let t = 0; t < 100; t++) {
    const header = await seedThread(c.server, { subject: c.patient, sent: ago(40 * DAY + t, at), meta: { lastUpdated: ago(40 * DAY + t, at) } });
    for (let k = 0; k < 120; k++) {
      const fromPatient = k % 2 === 0 || (t % 4 === 0 && k === 119);
      await seedMessage(c.server, header, fromPatient ? c.patient : c.nurse, ago(20 * DAY - k * 3 * HOUR - t, at));
    }
    if (t % 4 === 0) {
      waiting.push(`Communication/${header.id}`);
    }
  }
  return waiting;
}

describe('long histories: 100 threads of 120 messages (12,000 messages)', () => {
  test('the full reconcile and the hourly runs read them by cursor, never by offset past 10,000', { timeout: 600_000 }, async () => {
    const c = await clinic();
    const waiting = await longThreads(c, NOW);
    c.server.resetCounts();
    // The full reconcile (the first cron run: no marker yet): every thread read whole.
    const full = await run(c);
    expect(full).toMatchObject({ mode: 'full', threadsRead: 100, stale: 25, created: 25, failed: 0, reconcile: { threads: 100, complete: true } });
    expect([...perThread(await reminders(c)).keys()].sort()).toEqual([...waiting].sort());
    const offsets = c.server.requests.map((r) => Number(new URL(r.url).searchParams.get('_offset') ?? 0));
    expect(Math.max(...offsets)).toBeLessThanOrEqual(10_000);
    expect(c.server.requests.filter((r) => (r.status ?? 200) >= 400)).toEqual([]);
    // One chunk of a hundred threads: its 12,000 messages in 13 cursor pages of 1,000.
    const pages = c.server.requests.filter((r) => r.key === 'GET Communication' && new URL(r.url).searchParams.has('part-of'));
    expect(pages.length).toBeLessThanOrEqual(13 + 1);

    // An hourly run: the 25 reminded threads read since their silence began, not their history.
    vi.setSystemTime(new Date(NOW + HOUR));
    c.server.resetCounts();
    expect(await run(c, CRON)).toMatchObject({ mode: 'incremental', created: 0, alreadyReminded: 25 });
    expect(c.server.count()).toBeLessThanOrEqual(10);
    expect(c.server.requests.filter((r) => new URL(r.url).searchParams.has('_offset'))).toEqual([]);
  });

  test('the harness refuses offsets past 10,000, as the server does', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await expect(c.server.medplum.search('Communication', { _offset: '10001', _count: '20' })).rejects.toThrow(/offset/i);
  });
});
