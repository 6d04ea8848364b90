// A person's choice is one made for the patient's message, so after it could be seen. Found on a real
// server (the integration test, whose messages are stored with a `sent` in the past): a Task made by
// hand for Dr A at 11:00, and the patient's SMS sent at 09:00 but synced at 11:58, were read as "given
// to Dr A after the patient wrote", and Dr A's vacation no longer handed the thread off. The message
// arrives when it is stored: only a choice made after that is kept for it.
import type { Task } from '@medplum/fhirtypes';
import type { WithId } from '@medplum/core';
import { describe, expect, test } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { arrivedAt } from '../../src/lib/reroute-plan';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

// Friday 2026-11-27 in New York (UTC-5).
const local = (hhmm: string): string => `2026-11-27T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const NOW = Date.parse(local('12:00'));
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(NOW);

/** Dr A away all week; a Task made without an owner at 07:00, given to Dr A by a person at `given`; the SMS sent 09:00, stored at 11:58. */
async function world(given: string) {
  const server = createServerMock();
  const t = await seedOwnedThread(server, { away: true, task: { owner: undefined, status: 'requested', authoredOn: local('07:00'), meta: { lastUpdated: local('07:00') } } });
  const task = await server.read<WithId<Task>>('Task', t.task.id);
  await server.seedVersion<WithId<Task>>({ ...task, owner: ref(t.owner), meta: { lastUpdated: local(given) } });
  const message = await seedMessage(server, t.thread, t.patient, local('09:00'), { meta: { lastUpdated: local('11:58') } });
  server.resetCounts();
  return { server, t, message };
}

const sweep = async (server: ServerMock): Promise<SweepSummary> => (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
const ownerOf = async (server: ServerMock, id: string): Promise<Task['owner']> => (await server.read<Task>('Task', id)).owner;

describe('a message synced late, a Task given to Dr A (away) by a person', () => {
  test('given at 11:00, before the SMS (sent 09:00) arrived at 11:58: the sweep hands it off', async () => {
    const { server, t } = await world('11:00');
    expect(await sweep(server)).toMatchObject({ waiting: 1, rerouted: 1, failed: 0 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
  });

  test('the same on the event path', async () => {
    const { server, t, message } = await world('11:00');
    expect((await handler(server.medplum, botEvent(message))) as RerouteSummary).toMatchObject({ rerouted: 1 });
    expect(await ownerOf(server, t.task.id)).toBeUndefined();
  });

  test('control: given at 11:59, after the SMS arrived, it is the person\'s choice for it and stays', async () => {
    const { server, t } = await world('11:59');
    expect(await sweep(server)).toMatchObject({ waiting: 1, rerouted: 0 });
    expect(await ownerOf(server, t.task.id)).toEqual(ref(t.owner));
  });
});

test('arrivedAt: the later of when the message was sent and when it was stored', () => {
  expect(arrivedAt({ triggerTime: 100, triggerArrived: 500 })).toBe(500);
  expect(arrivedAt({ triggerTime: 500, triggerArrived: 100 })).toBe(500);
  expect(arrivedAt({ triggerTime: 100 })).toBe(100);
  expect(arrivedAt({})).toBeUndefined();
});
