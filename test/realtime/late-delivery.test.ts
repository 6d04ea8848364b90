// One reading of the conversation for the event path and the sweep. A patient's SMS sent at 09:37
// can be stored after the on-call colleague's 10:07 reply (a gateway delivering late): the care
// team spoke last, so the Task stays, whichever path decides.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedPractitioner } from '../harness/fixtures';
import type { OwnedThread, Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

// Friday 2026-11-27 in New York (UTC-5): 09:37 is 14:37Z.
const local = (hhmm: string): string => `2026-11-27T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const NOW = Date.parse(local('10:10')) + 20_000; // the late SMS's run, 20 s after it was stored
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

/** A thread whose owner is away (a vacation block), with a patient message at 09:00 and the Task authored (and stored) at 08:00. */
async function awayThread(server: ServerMock): Promise<OwnedThread & { colleague: Ref }> {
  const t = await seedOwnedThread(server, { away: true, task: { authoredOn: local('08:00'), meta: { lastUpdated: local('08:00') } } });
  await seedMessage(server, t.thread, t.patient, local('09:00'));
  return { ...t, colleague: ref(await seedPractitioner(server)) };
}

async function event(server: ServerMock, message: Communication): Promise<RerouteSummary> {
  return (await handler(server.medplum, botEvent(message))) as RerouteSummary;
}

async function sweep(server: ServerMock): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
}

describe('a patient message stored after the reply it came before', () => {
  async function lateSms(): Promise<{ server: ServerMock; t: OwnedThread; sms: Communication }> {
    const server = createServerMock();
    const t = await awayThread(server);
    await seedMessage(server, t.thread, t.colleague, local('10:07')); // the on-call colleague answers
    const sms = await seedMessage(server, t.thread, t.patient, local('09:37'), { meta: { lastUpdated: local('10:10') } });
    return { server, t, sms };
  }

  test('the event path keeps the Task: the care team spoke last', async () => {
    const { server, t, sms } = await lateSms();
    const summary = await event(server, sms);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0, kept: 1 });
    expect(summary.decisions).toEqual([expect.objectContaining({ action: 'kept', reason: 'owner unavailable, but the care team spoke last' })]);
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  });

  test('the sweep, on the same data, decides the same', async () => {
    const { server, t } = await lateSms();
    expect(await sweep(server)).toMatchObject({ waiting: 0, rerouted: 0, failed: 0 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  });

  test('with the patient still waiting (no reply), the late message moves the Task, one message search more than a fresh one', async () => {
    const server = createServerMock();
    const t = await awayThread(server);
    const sms = await seedMessage(server, t.thread, t.patient, local('09:37'), { meta: { lastUpdated: local('10:10') } });
    server.resetCounts();
    const summary = await event(server, sms);
    expect(summary).toMatchObject({ rerouted: 1 });
    expect(server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1, 'GET Communication': 1, 'POST batch': 1 });
    expect(server.points()).toBe(260);
    // The trigger is the latest patient message, as the sweep would name it.
    const task = await server.read<Task>('Task', t.task.id);
    expect(task.note?.at(-1)?.extension?.[0].extension?.find((e) => e.url === 'trigger')?.valueReference?.reference).toBe(`Communication/${sms.id}`);
  });
});

describe('a fresh message', () => {
  test('reroutes at the cost it always had: the Tasks with owners and Schedules, the absences, one write', async () => {
    const server = createServerMock();
    const t = await awayThread(server);
    vi.setSystemTime(new Date(local('10:15')));
    const message = await seedMessage(server, t.thread, t.patient, new Date(Date.now() - 1_000).toISOString());
    server.resetCounts();
    expect(await event(server, message)).toMatchObject({ rerouted: 1 });
    expect(server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1, 'POST batch': 1 });
    expect(server.points()).toBe(240);
  });

  test('a fresh message in a thread whose owner is present reads nothing more either', async () => {
    const server = createServerMock();
    const t = await seedOwnedThread(server, { task: { authoredOn: local('08:00') } });
    const message = await seedMessage(server, t.thread, t.patient, local('10:09'));
    server.resetCounts();
    expect(await event(server, message)).toMatchObject({ rerouted: 0, kept: 1 });
    expect(server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1 });
    expect(server.points()).toBe(40);
  });
});
