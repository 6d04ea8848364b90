// The bots never undo a person (issue #28, invariant 3), for a Task the bot never routed. A hostile
// review found a hand-off Task made at 03:04 without an owner, given by a person to Dr A (away) at
// 11:57 after the patient wrote at 09:00, sent to the pool by the 12:00 sweep: the history was read
// only for Tasks carrying the bot's routing note. Now a Task that would move and changed after the
// message has its history read (10 points) unless when it was made already says who chose its owner,
// and the version that set the current owner decides: a person's after the message keeps it; the
// Task's creation (before the message, or an integration's within two minutes of it) does not.
import type { Task } from '@medplum/fhirtypes';
import type { WithId } from '@medplum/core';
import { describe, expect, test } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { needsOwnerHistory } from '../../src/lib/reroute-plan';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

// Friday 2026-11-27 in New York (UTC-5).
const local = (hhmmss: string): string => `2026-11-27T${String(Number(hhmmss.slice(0, 2)) + 5).padStart(2, '0')}:${hhmmss.slice(3).padEnd(5, ':00')}.000Z`;
const NOW = Date.parse(local('12:00'));
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(NOW);

/**
 * Dr A away all week. The Task is made at `made` (owner Dr A unless `unowned`), the patient writes
 * at 09:00, then each later change of the Task is applied: [time, owner Dr A or none, status].
 */
async function world(made: string, changes: [string, 'drA' | 'none', Task['status']][], unowned = false) {
  const server = createServerMock();
  const t = await seedOwnedThread(server, {
    away: true,
    task: { ...(unowned ? { owner: undefined } : {}), status: 'requested', authoredOn: local(made), meta: { lastUpdated: local(made) } },
  });
  const message = await seedMessage(server, t.thread, t.patient, local('09:00'));
  let task = await server.read<WithId<Task>>('Task', t.task.id);
  for (const [time, owner, status] of changes) {
    task = await server.seedVersion<WithId<Task>>({ ...task, owner: owner === 'drA' ? ref(t.owner) : undefined, status, meta: { lastUpdated: local(time) } });
  }
  server.resetCounts();
  return { server, t, message };
}

const sweep = async (server: ServerMock): Promise<SweepSummary> => (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
const historyReads = (server: ServerMock): number => server.count((r) => r.path.endsWith('/_history'));
const ownerOf = async (server: ServerMock, id: string): Promise<Task['owner']> => (await server.read<Task>('Task', id)).owner;

describe('a Task the bot never routed, changed after the patient wrote', () => {
  test('made at 03:04 without an owner, given by a person to Dr A at 11:57: the sweep keeps it (one history read)', async () => {
    const { server, t } = await world('03:04', [['11:57', 'drA', 'requested']], true);
    expect(await sweep(server)).toMatchObject({ waiting: 1, rerouted: 0, failed: 0 });
    expect(await ownerOf(server, t.task.id)).toEqual(ref(t.owner));
    expect(historyReads(server)).toBe(1);
    expect(server.points((r) => r.path.endsWith('/_history'))).toBe(10);
  });

  test('the same, decided by the event path for a late copy of the message: kept as a person\'s choice', async () => {
    const { server, t, message } = await world('03:04', [['11:57', 'drA', 'requested']], true);
    const summary = (await handler(server.medplum, botEvent(message))) as RerouteSummary;
    expect(summary).toMatchObject({ rerouted: 0 });
    expect(summary.decisions).toEqual([expect.objectContaining({ action: 'kept', reason: 'assigned by a person after the patient wrote' })]);
    expect(await ownerOf(server, t.task.id)).toEqual(ref(t.owner));
  });

  test('owned by Dr A since 03:04 and only accepted at 11:00: handed off (the owner was set before the message)', async () => {
    const { server, t } = await world('03:04', [['11:00', 'drA', 'accepted']]);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
    expect(historyReads(server)).toBe(1);
  });

  test('given to Dr A at 08:00, before the message, and accepted at 11:00: handed off', async () => {
    const { server, t } = await world('03:04', [['08:00', 'drA', 'requested'], ['11:00', 'drA', 'accepted']], true);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
  });

  test('an integration\'s Task made 30 s after the message for Dr A: handed off, no history read', async () => {
    const { server, t } = await world('09:00:30', []);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
    expect(historyReads(server)).toBe(0);
  });

  test('an integration\'s Task made 30 s after the message for Dr A, accepted at 11:00: handed off (its creation set the owner)', async () => {
    const { server, t } = await world('09:00:30', [['11:00', 'drA', 'accepted']]);
    expect(await sweep(server)).toMatchObject({ rerouted: 1 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
    expect(historyReads(server)).toBe(1);
  });

  test('an integration\'s Task made without an owner, given by a person to Dr A at 11:57: kept', async () => {
    const { server, t } = await world('09:00:30', [['11:57', 'drA', 'requested']], true);
    expect(await sweep(server)).toMatchObject({ rerouted: 0 });
    expect(await ownerOf(server, t.task.id)).toEqual(ref(t.owner));
  });

  test('a hand-off made for Dr A at 09:30, after the message: kept, no history read (when it was made says so)', async () => {
    const { server, t } = await world('09:30', [['11:00', 'drA', 'accepted']]);
    expect(await sweep(server)).toMatchObject({ rerouted: 0 });
    expect(await ownerOf(server, t.task.id)).toEqual(ref(t.owner));
    expect(historyReads(server)).toBe(0);
  });
});

describe('needsOwnerHistory (pure)', () => {
  const wroteAt = Date.parse(local('09:00'));
  const task = (authoredOn: string, lastUpdated: string): Task => ({
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    owner: { reference: 'Practitioner/a' },
    authoredOn: local(authoredOn),
    meta: { lastUpdated: local(lastUpdated) },
  });

  test('a Task the bot never routed: read when it changed after the message, unless when it was made settles it', () => {
    expect(needsOwnerHistory(task('03:04', '11:57'), { triggerTime: wroteAt })).toBe(true);
    expect(needsOwnerHistory(task('03:04', '08:00'), { triggerTime: wroteAt })).toBe(false); // not changed since
    expect(needsOwnerHistory(task('09:30', '11:57'), { triggerTime: wroteAt })).toBe(false); // made by hand after it
    expect(needsOwnerHistory(task('09:00:30', '09:00:30'), { triggerTime: wroteAt })).toBe(false); // an integration's, unchanged
    expect(needsOwnerHistory(task('09:00:30', '11:00'), { triggerTime: wroteAt })).toBe(true); // changed since: by whom?
  });
});
