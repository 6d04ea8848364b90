// Threads stay in progress for years and gather thousands of messages. The server refuses any
// `_offset` past 10,000, so a read that pages by offset fails once a chunk of threads holds more
// messages than that; and a read of whole histories costs more every month. The sweep and the SLA
// export must work on a clinic past that wall, and a long thread must cost what a short one costs.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { main } from '../../src/sla/sla-export';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedPractitioner } from '../harness/fixtures';
import type { OwnedThread, Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

/**
 * A thread of `count` messages, patient and care team taking turns, one every `spacing` ms up to 10
 * minutes ago; the last is the patient's, so the patient waits. Its response Task was authored when
 * that last message came.
 */
async function longThread(server: ServerMock, count: number, options: { away?: boolean; colleague: Ref; spacing?: number }): Promise<OwnedThread & { last: Communication }> {
  const spacing = options.spacing ?? 20 * MINUTE;
  const lastAt = NOW - 10 * MINUTE;
  const t = await seedOwnedThread(server, { away: options.away, task: { authoredOn: new Date(lastAt).toISOString() } });
  let last: Communication | undefined;
  for (let j = count - 1; j >= 0; j--) {
    const sender = j % 2 === 0 ? t.patient : options.colleague;
    last = await seedMessage(server, t.thread, sender, new Date(lastAt - j * spacing).toISOString());
  }
  return { ...t, last: last as Communication };
}

async function sweep(server: ServerMock, secrets: Record<string, string> = {}): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '900', ...secrets }))) as SweepSummary;
}

async function slaExport(server: ServerMock): Promise<{ code: number; rows: SlaRow[]; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['--since', '2026-10-01'], {
    medplum: server.clientAs('user'),
    now: new Date(NOW),
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    progress: { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined },
  });
  return { code, err, rows: out.trim() ? out.trim().split('\n').map((l) => JSON.parse(l) as SlaRow) : [] };
}

describe('past the offset wall: 100 threads of 120 messages (12,000 messages in one chunk)', () => {
  // Seeded once for both tests (about 12,000 resources).
  let clinic: Promise<{ server: ServerMock; threads: OwnedThread[] }> | undefined;
  const seedClinic = (): Promise<{ server: ServerMock; threads: OwnedThread[] }> =>
    (clinic ??= (async () => {
      const server = createServerMock();
      const colleague = ref(await seedPractitioner(server));
      const threads: OwnedThread[] = [];
      for (let i = 0; i < 100; i++) {
        threads.push(await longThread(server, 120, { away: true, colleague, spacing: 60 * MINUTE }));
      }
      return { server, threads };
    })());

  test('the sweep reroutes every waiting thread of an away owner', { timeout: 600_000 }, async () => {
    const { server, threads } = await seedClinic();
    server.resetCounts();
    const summary = await sweep(server);
    expect(summary).toMatchObject({ threadsRead: 100, waiting: 100, rerouted: 100, failed: 0, stoppedEarly: false });
    for (const t of threads) {
      expect((await server.read<Task>('Task', t.task.id)).owner).toBeUndefined();
    }
    expect(server.requests.filter((r) => r.status === 400)).toEqual([]);
  });

  test('the SLA export has every row', { timeout: 600_000 }, async () => {
    const { server } = await seedClinic();
    server.resetCounts();
    const exported = await slaExport(server);
    expect(exported.err).not.toContain('failed');
    expect(exported.code).toBe(0);
    expect(exported.rows).toHaveLength(100);
    // No first reply yet: the patient spoke last, when the Task was authored.
    expect(exported.rows.every((r) => r.first_reply_at === null)).toBe(true);
    expect(server.requests.filter((r) => r.status === 400)).toEqual([]);
  });
});

describe('a long thread costs what a short one costs', () => {
  /**
   * The requests (and points) over a single thread of `count` messages: a sweep, an SLA export, and
   * the events of a late patient message and of the care team's reply (completing the response Task).
   */
  async function costs(count: number): Promise<{ sweep: string[]; sweepPoints: number; sla: string[]; late: string[]; reply: string[] }> {
    vi.setSystemTime(new Date(NOW));
    const server = createServerMock();
    const colleague = ref(await seedPractitioner(server));
    const seeded = await longThread(server, count, { away: true, colleague });
    expect(await server.searchAll('Communication', `part-of=Communication/${seeded.thread.id}&_count=10000`)).toHaveLength(count);
    server.resetCounts();
    expect(await sweep(server, { RESPONSE_TASKS: 'on' })).toMatchObject({ rerouted: 1, failed: 0 });
    const sweepRequests = server.requests.map((r) => r.key);
    const sweepPoints = server.points();
    server.resetCounts();
    expect((await slaExport(server)).code).toBe(0);
    const sla = server.requests.map((r) => r.key);
    // An hour later someone hands the Task back to its absent owner; then a late SMS, and a reply.
    vi.setSystemTime(new Date(NOW + 60 * MINUTE));
    await server.update({ ...(await server.read<Task>('Task', seeded.task.id)), owner: ref(seeded.owner) });
    const late = await seedMessage(server, seeded.thread, seeded.patient, new Date(NOW + 70 * MINUTE).toISOString(), { meta: { lastUpdated: new Date(NOW + 80 * MINUTE).toISOString() } });
    vi.setSystemTime(new Date(NOW + 80 * MINUTE));
    server.resetCounts();
    expect(await handler(server.medplum, botEvent(late, { RESPONSE_TASKS: 'on' }))).toMatchObject({ rerouted: 1 });
    const lateRequests = server.requests.map((r) => r.key);
    const reply = await seedMessage(server, seeded.thread, colleague, new Date(NOW + 81 * MINUTE).toISOString());
    vi.setSystemTime(new Date(NOW + 81 * MINUTE));
    server.resetCounts();
    expect(await handler(server.medplum, botEvent(reply, { RESPONSE_TASKS: 'on' }))).toMatchObject({ completed: 1 });
    return { sweep: sweepRequests, sweepPoints, sla, late: lateRequests, reply: server.requests.map((r) => r.key) };
  }

  test('5,000 messages against 50: the same requests and points, for the sweep, the SLA export and the event path', { timeout: 600_000 }, async () => {
    const short = await costs(50);
    const long = await costs(5_000);
    expect(long.sweep).toEqual(short.sweep);
    expect(long.sweepPoints).toBe(short.sweepPoints);
    expect(long.sla).toEqual(short.sla);
    expect(long.late).toEqual(short.late);
    expect(short.late).toEqual(['GET Task', 'GET Slot', 'GET Communication', 'POST batch']); // read before it moved the Task
    expect(long.reply).toEqual(short.reply);
    expect(short.reply).toEqual(['GET Task', 'GET Communication', 'POST batch']); // the Tasks, one page of messages, the completion
    // The header, the threads with a message today (the lifecycle's look-back), one page of messages.
    expect(short.sweep.filter((k) => k === 'GET Communication')).toHaveLength(3);
  });
});
