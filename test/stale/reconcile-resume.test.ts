// A full reconcile larger than one run: it writes as it goes, a hundred threads at a time, records
// where it is on the bot's marker, and the next run goes on from there, until every open thread was
// reconciled once; nothing is reminded twice.
import type { Communication } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import type { StaleSummary } from '../../src/stale-thread-reminders';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { seedMessage } from '../harness/fixtures';
import { clinic, CRON, DAY, FINISHED_URL, HOUR, markers, PASS_STARTED_URL, perThread, reminders, run, thread, throttled } from './helpers';
import type { Clinic } from './helpers';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

useFixedTimeAndQuietConsole(NOW);

/** Every read of a chunk's whole threads (a reconcile's message search, its first page) takes `seconds` of the run. */
function slowReads(c: Clinic, seconds: number): void {
  c.server.beforeRequest = (r) => {
    const q = new URL(r.url).searchParams;
    if (r.key === 'GET Communication' && q.has('part-of') && !q.has('_lastUpdated') && !q.has('_cursor') && !q.has('_offset')) {
      vi.setSystemTime(new Date(Date.now() + seconds * 1000));
    }
  };
}

/** Runs the cron until the pass completes (at most `limit` runs), a minute apart. */
async function runUntilComplete(c: Clinic, limit: number, secrets: Record<string, string>): Promise<StaleSummary[]> {
  const runs: StaleSummary[] = [];
  while (!runs.at(-1)?.reconcile?.complete && runs.length < limit) {
    vi.setSystemTime(new Date(NOW + runs.length * 60_000));
    runs.push(await run(c, CRON, secrets));
  }
  return runs;
}

describe('a full reconcile over more threads than one run can read', () => {
  test('goes on across runs from where each stopped; no run starts over, none reminded twice', { timeout: 300_000 }, async () => {
    const c = await clinic();
    const stale = [];
    for (let i = 0; i < 450; i++) {
      // Every third thread waits (stale, out of the hourly window); the others were answered.
      const waiting = i % 3 === 0 ? 5 * DAY + i * 1000 : undefined;
      const header = await thread(c, { opened: 30 * DAY + i * 1000, replied: 10 * DAY, waiting }, NOW);
      if (waiting) {
        stale.push(header);
      }
    }
    // A 60 s timeout stops starting work at 48 s; each chunk's read takes 15 s: three chunks a run.
    slowReads(c, 15);
    const runs = await runUntilComplete(c, 10, { BOT_TIMEOUT_SECONDS: '60' });
    expect(runs.map((r) => r.reconcile?.threads)).toEqual([300, 150]);
    expect(runs.map((r) => r.reconcile?.pausedBy)).toEqual(['deadline', undefined]);
    expect(runs.map((r) => r.created)).toEqual([100, 50]);
    expect(runs.every((r) => r.failed === 0 && r.episodeExists === 0)).toBe(true);
    // Each thread's whole history was read, and again only for the chunk a deadline cut between its
    // read and its writes (at most one a run): no run starts the pass over.
    const whole = c.server.requests
      .map((r) => new URL(r.url).searchParams)
      .filter((q) => q.has('part-of') && !q.has('_lastUpdated') && !q.has('_cursor'))
      .flatMap((q) => (q.get('part-of') as string).split(','));
    expect(new Set(whole).size).toBe(450);
    expect(whole.length).toBeLessThanOrEqual(450 + 100 * (runs.length - 1));
    const counts = perThread(await reminders(c));
    expect(counts.size).toBe(150);
    expect(stale.every((t) => counts.get(`Communication/${t.id}`) === 1)).toBe(true);
    // The pass is recorded as finished; no pass left in progress.
    const [marker] = await markers(c);
    expect(marker.extension?.find((e) => e.url === FINISHED_URL)?.valueInstant).toBeDefined();
    expect(marker.extension?.some((e) => e.url === PASS_STARTED_URL)).toBe(false);

    // The next runs (within the day): hourly only, nothing reminded again.
    c.server.beforeRequest = undefined;
    vi.setSystemTime(new Date(NOW + HOUR));
    expect(await run(c)).toMatchObject({ mode: 'incremental', created: 0 });
  });

  test('a small quota: the pass pauses when the quota left cannot cover the next read, and goes on the next minute', { timeout: 300_000 }, async () => {
    const c = await clinic({ quota: { perCaller: 3_000 } });
    for (let i = 0; i < 300; i++) {
      await thread(c, { opened: 30 * DAY + i * 1000, replied: 10 * DAY, waiting: i % 10 === 0 ? 5 * DAY + i : undefined }, NOW);
    }
    const runs = await runUntilComplete(c, 20, {});
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.slice(0, -1).every((r) => r.reconcile?.pausedBy === 'quota')).toBe(true);
    expect(runs.reduce((n, r) => n + r.created, 0)).toBe(30);
    expect(Math.max(...perThread(await reminders(c)).values())).toBe(1);
    expect(throttled(c.server)).toEqual([]);
  });

  test('headers sharing one stored instant (a bulk import) past a page: the pass goes on past them, across runs', { timeout: 300_000 }, async () => {
    const c = await clinic({ maxPageSize: 20 });
    const imported = ago(40 * DAY);
    for (let i = 0; i < 130; i++) {
      await thread(c, { opened: 30 * DAY, waiting: 5 * DAY + i * 1000 }, NOW, { meta: { lastUpdated: imported } });
    }
    slowReads(c, 30); // one chunk a run
    const runs = await runUntilComplete(c, 5, { BOT_TIMEOUT_SECONDS: '60' });
    expect(runs.map((r) => r.created)).toEqual([100, 30]);
    expect(Math.max(...perThread(await reminders(c)).values())).toBe(1);
    expect((await reminders(c)).length).toBe(130);
  });

  test('a header updated while its pass goes on is reconciled again, and not reminded twice', { timeout: 300_000 }, async () => {
    const c = await clinic();
    const headers = [];
    for (let i = 0; i < 200; i++) {
      headers.push(await thread(c, { opened: 30 * DAY + i * 1000, waiting: 5 * DAY + i }, NOW));
    }
    slowReads(c, 30);
    const first = await run(c, CRON, { BOT_TIMEOUT_SECONDS: '60' });
    expect(first.reconcile).toMatchObject({ threads: 100, pausedBy: 'deadline' });
    // Someone edits the first-reconciled thread's header (a recipient added): it moves to the end.
    const oldest = headers[199];
    await c.server.update({ ...(await c.server.read<Communication>('Communication', oldest.id)), recipient: [c.nurse] });
    await seedMessage(c.server, oldest, c.patient, ago(HOUR)); // a follow-up: the same episode
    const second = await run(c, CRON, { BOT_TIMEOUT_SECONDS: '60' });
    expect(second.reconcile).toMatchObject({ complete: true });
    const counts = perThread(await reminders(c));
    expect(counts.size).toBe(200);
    expect(Math.max(...counts.values())).toBe(1);
  });
});
