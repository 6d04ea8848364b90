// Issue #28, invariant 6 (`throttled`): every read of the sweep (each page of its Task scan, each
// chunk's headers and conversations, owners, histories) is sent only when the quota the last response
// announced (RateLimit) covers it; one guard per run (src/lib/read-guard.ts) is asked before each.
// Short of it the sweep stops early, its summary says so, nothing is decided on half its reads, and
// the next sweep with quota does the work. (The recent-message scan: recent-scan-quota.test.ts.)
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedTask, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { burstAfter, refusedForQuota } from '../harness/quota-burst';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const OFF = { BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

async function sweep(server: ServerMock, secrets: Record<string, string>): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, secrets))) as SweepSummary;
}

const refused = refusedForQuota;

describe('the sweep', () => {
  test("9 points left after a chunk's header read: its conversation read is not sent, the sweep stops early, and the next one reroutes", async () => {
    const server = createServerMock();
    const t = await seedOwnedThread(server, { away: true, task: { authoredOn: new Date(NOW - 60 * MINUTE).toISOString() } });
    await seedMessage(server, t.thread, t.patient, new Date(NOW - 30 * MINUTE).toISOString()); // its event lost

    burstAfter(server, (r) => r.key === 'GET Communication' && new URL(r.url).searchParams.has('_id'), 9);
    const first = await sweep(server, OFF);
    expect(refused(server)).toEqual([]);
    expect(server.requests.filter((r) => r.caller === DEFAULT_CALLER).map((r) => r.key)).toEqual(['GET Task', 'GET Communication']);
    expect(first).toMatchObject({ stoppedEarly: true, rerouted: 0, failed: 0, deferred: { quota: 1, deadline: 0 } });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));

    vi.setSystemTime(NOW + 15 * MINUTE);
    expect(await sweep(server, OFF)).toMatchObject({ stoppedEarly: false, rerouted: 1, failed: 0 });
    expect((await server.read<Task>('Task', t.task.id)).owner).not.toEqual(ref(t.owner));
    expect(refused(server)).toEqual([]);
  });

  test("9 points left after the Task scan's first page: its second page is not sent, the sweep stops early, and the next one reads every page", async () => {
    const server = createServerMock();
    const t = await seedOwnedThread(server, { away: true, task: { authoredOn: new Date(NOW - 60 * MINUTE).toISOString() } });
    await seedMessage(server, t.thread, t.patient, new Date(NOW - 30 * MINUTE).toISOString());
    // More open Tasks than a page holds (1,000), on a thread nobody waits on: the away owner's is stored last.
    const other = await seedThread(server, { subject: t.patient, recipient: [t.patient] });
    for (let i = 0; i < 1_000; i++) {
      await seedTask(server, other, { meta: { lastUpdated: new Date(NOW - 3 * 3_600_000 + i).toISOString() } });
    }

    burstAfter(server, (r) => r.key === 'GET Task', 9);
    const first = await sweep(server, OFF);
    expect(refused(server)).toEqual([]);
    expect(server.requests.filter((r) => r.caller === DEFAULT_CALLER).map((r) => r.key)).toEqual(['GET Task']);
    expect(first).toMatchObject({ stoppedEarly: true, rerouted: 0, failed: 0 });

    vi.setSystemTime(NOW + 15 * MINUTE);
    expect(await sweep(server, OFF)).toMatchObject({ stoppedEarly: false, tasksScanned: 1_001, rerouted: 1, failed: 0 });
    expect(refused(server)).toEqual([]);
  });
});
