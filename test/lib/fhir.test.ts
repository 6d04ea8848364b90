import type { BundleEntry, Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { applyWrites, guardedPatchEntry } from '../../src/lib/fhir';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

async function tasks(server: ServerMock, n: number): Promise<(Task & { id: string })[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order' }));
  }
  return out;
}
const complete = (task: Task & { id: string }): BundleEntry => guardedPatchEntry(task, [{ op: 'replace', path: '/status', value: 'completed' }]);

describe('applyWrites', () => {
  test('groups are never split: a group that does not fit the quota left is deferred whole, and so is the rest', async () => {
    const server = createServerMock({ quota: { perCaller: 450 } });
    const t = await tasks(server, 5);
    await server.medplum.readResource('Task', t[0].id); // 1 point: the server announces 449 left
    // 200 fits; the next group's 300 does not fit the 249 left; the last (100) would, but order is priority.
    const outcomes = await applyWrites(server.medplum, [[complete(t[0]), complete(t[1])], [complete(t[2]), complete(t[3]), complete(t[4])], [complete(t[0])]]);
    expect(outcomes.map((g) => g.map((o) => o.kind))).toEqual([['applied', 'applied'], ['deferred', 'deferred', 'deferred'], ['deferred']]);
    expect(outcomes[1][0]).toEqual({ kind: 'deferred', why: 'quota' });
    // Deferred means not sent: one batch of two entries reached the server.
    expect(server.requests.filter((r) => r.key === 'POST batch').map((r) => r.batchEntries?.length)).toEqual([2]);
    expect(server.quota.remaining('bot')).toBe(249);
  });

  test('a reserve is left unspent', async () => {
    const server = createServerMock({ quota: { perCaller: 1000 } });
    const t = await tasks(server, 3);
    await server.medplum.readResource('Task', t[0].id);
    const outcomes = await applyWrites(server.medplum, [[complete(t[0])], [complete(t[1])], [complete(t[2])]], { reserve: 750 });
    expect(outcomes.map((g) => g[0].kind)).toEqual(['applied', 'applied', 'deferred']);
  });

  test('chunks of at most chunkSize entries, each group whole', async () => {
    const server = createServerMock();
    const t = await tasks(server, 5);
    await applyWrites(server.medplum, [[complete(t[0]), complete(t[1])], [complete(t[2]), complete(t[3])], [complete(t[4])]], { chunkSize: 3 });
    expect(server.requests.filter((r) => r.key === 'POST batch').map((r) => r.batchEntries?.length)).toEqual([2, 3]);
  });

  test('per entry: applied, conflict (a failed test), deferred on a 429, failed otherwise', async () => {
    const server = createServerMock({ quota: { perCaller: 10_000 } });
    const [a, b, c] = await tasks(server, 3);
    await server.update({ ...b, status: 'accepted' }); // b changes after being read
    // Another caller spends the same budget meanwhile? Here: the quota runs out inside the batch.
    server.beforeRequest = (r) => {
      if (r.key === 'POST batch') {
        server.quota.begin('bot').charge(9_700);
      }
    };
    const outcomes = await applyWrites(server.medplum, [
      [complete(a)],
      [complete(b)],
      [{ request: { method: 'PATCH', url: 'Task/missing' }, resource: complete(c).resource }],
      [complete(c)],
    ]);
    expect(outcomes.map((g) => g[0].kind)).toEqual(['applied', 'conflict', 'failed', 'deferred']);
    expect(outcomes[3][0]).toEqual({ kind: 'deferred', why: 'quota' });
  });

  test('a whole batch refused for quota is deferred; refused otherwise, failed', async () => {
    const server = createServerMock();
    const [a] = await tasks(server, 1);
    server.faults.push({ match: /^POST $/, status: 429, times: Infinity });
    expect((await applyWrites(server.medplum, [[complete(a)]]))[0]).toEqual([{ kind: 'deferred', why: 'quota' }]);
    server.faults.length = 0;
    server.faults.push({ match: /^POST $/, status: 503, times: Infinity });
    expect((await applyWrites(server.medplum, [[complete(a)]]))[0][0]).toMatchObject({ kind: 'failed', status: 'error' });
  });

  test('the deadline defers what is not sent yet', async () => {
    const server = createServerMock();
    const [a, b] = await tasks(server, 2);
    let calls = 0;
    const outcomes = await applyWrites(server.medplum, [[complete(a)], [complete(b)]], { chunkSize: 1, shouldStop: () => calls++ > 0 });
    expect(outcomes.map((g) => g[0])).toEqual([expect.objectContaining({ kind: 'applied' }), { kind: 'deferred', why: 'deadline' }]);
  });
});
