import type { MedplumClient } from '@medplum/core';
import type { BundleEntry, OperationOutcome, Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { applyWrites, guardedPatchEntry, isOpenTask, referenceType } from '../../src/lib/fhir';
import { scanGuarded, searchGuarded, UNGUARDED } from '../../src/lib/read-guard';
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

describe('details', () => {
  /** A client whose batch answers with the given entries, and that has seen no quota header. */
  const answering = (entries: BundleEntry[] | Error): MedplumClient =>
    ({
      executeBatch: async () => {
        if (entries instanceof Error) {
          throw entries;
        }
        return { resourceType: 'Bundle', type: 'batch-response', entry: entries };
      },
      rateLimitStatus: () => [],
    }) as unknown as MedplumClient;
  const write: BundleEntry = { request: { method: 'PUT', url: 'Task/t' }, resource: { resourceType: 'Task', status: 'requested', intent: 'order' } };
  const outcome = (text: string, code: OperationOutcome['issue'][number]['code'] = 'processing'): OperationOutcome => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] });

  test('each entry status, as the server writes it, to an outcome', async () => {
    const cases: [BundleEntry, unknown][] = [
      [{ response: { status: '201 Created' }, resource: { resourceType: 'Task', id: 'x', status: 'requested', intent: 'order' } }, { kind: 'applied', status: '201', resource: { id: 'x' } }],
      [{ response: { status: '200' } }, { kind: 'applied', status: '200' }],
      [{ response: { status: '429' } }, { kind: 'deferred', why: 'quota' }],
      [{ response: { status: '400', outcome: { ...outcome('slow down', 'throttled') } } }, { kind: 'deferred', why: 'quota' }],
      [{ response: { status: '400', outcome: outcome('Test failed: /meta/versionId') } }, { kind: 'conflict', status: '400', error: 'Test failed: /meta/versionId' }],
      [{ response: { status: '412', outcome: outcome('Precondition Failed') } }, { kind: 'conflict', status: '412', error: 'Precondition Failed' }],
      [{ response: { status: '409', outcome: outcome('Conflict') } }, { kind: 'conflict', status: '409', error: 'Conflict' }],
      [{ response: { status: '500', outcome: outcome('Internal') } }, { kind: 'failed', status: '500', error: 'Internal' }],
      [{ response: { status: '404' } }, { kind: 'failed', status: '404', error: 'no outcome' }],
      [{}, { kind: 'failed', status: 'none', error: 'no outcome' }],
    ];
    for (const [entry, expected] of cases) {
      const [[result]] = await applyWrites(answering([entry]), [[write]]);
      expect(result, JSON.stringify(entry)).toMatchObject(expected as object);
    }
  });

  test('a batch that throws: a quota refusal defers every entry, anything else fails them with the message', async () => {
    const quota = Object.assign(new Error('Too Many Requests'), { outcome: { resourceType: 'OperationOutcome', id: 'too-many-requests', issue: [] } });
    expect(await applyWrites(answering(quota), [[write, write]])).toEqual([[{ kind: 'deferred', why: 'quota' }, { kind: 'deferred', why: 'quota' }]]);
    expect(await applyWrites(answering(new Error('socket hang up')), [[write]])).toEqual([[{ kind: 'failed', status: 'error', error: 'socket hang up' }]]);
  });

  test('referenceType: only a literal Type/id', () => {
    expect(referenceType({ reference: 'Patient/1' })).toBe('Patient');
    for (const reference of ['patient/1', 'Patient/', 'Patient/1/_history/2', 'https://x.org/fhir/Patient/1', '#contained', 'Patient']) {
      expect(referenceType({ reference }), reference).toBeUndefined();
    }
    expect(referenceType({ display: 'Dr A' })).toBeUndefined();
    expect(referenceType(undefined)).toBeUndefined();
  });

  test('open Tasks: every status until the work is done or dropped', () => {
    const open = ['draft', 'requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold'];
    const closed = ['completed', 'cancelled', 'failed', 'rejected', 'entered-in-error'];
    for (const status of [...open, ...closed]) {
      expect(isOpenTask({ resourceType: 'Task', status, intent: 'order' } as Task), status).toBe(open.includes(status));
    }
  });

  test('searches ask for the largest page unless told a _count', async () => {
    const server = createServerMock();
    await searchGuarded(server.medplum, 'Patient', {}, UNGUARDED);
    await searchGuarded(server.medplum, 'Patient', { _count: '5' }, UNGUARDED);
    expect(server.requests.map((r) => new URL(r.url, 'http://x').searchParams.get('_count'))).toEqual(['1000', '5']);
  });
});

describe('reading', () => {
  test('a scan that fails for another reason than the cursor is not read again with offsets', async () => {
    const server = createServerMock();
    await server.seed({ resourceType: 'Patient' });
    server.faults.push({ match: /^GET Patient$/, status: 503, times: 3 });
    const warnings: string[] = [];
    await expect(scanGuarded(server.medplum, 'Patient', {}, UNGUARDED, () => undefined, { warn: (m) => warnings.push(m) })).rejects.toThrow();
    expect(warnings).toEqual([]);
  });
});
