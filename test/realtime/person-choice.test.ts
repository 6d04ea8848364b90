// The bots never undo a person, but a person's choice made before the patient wrote is no choice about
// that message: a doctor given the Task last week who accepts it today after the patient wrote, then
// calls in sick, has the Task handed off (found by a hostile review: any later edit used to count as
// a person's choice, and the Task stayed with the sick doctor until the patient wrote again).
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { OOO_BOT_NAME, REROUTE_RECORD_URL } from '../../src/lib/reroute-plan';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedBlock, seedMessage, seedOwnedThread, seedPractitioner } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';

const local = (day: string, hhmm: string): string => `2026-11-${day}T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
const NOW = Date.parse(local('27', '12:00')); // Friday noon in New York, Dr B on shift 09-17
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(NOW);

async function scenario(touchedAfterMessage: boolean) {
  const server = createServerMock();
  const drA = await seedPractitioner(server);
  // Last week the bot sent the Task to the pool (Dr A away); a person then gave it to Dr B (Nov 21).
  const botNote = {
    time: local('20', '10:00'),
    authorString: OOO_BOT_NAME,
    text: 'Returned to the team pool: Dr A is away.',
    extension: [{ url: REROUTE_RECORD_URL, extension: [{ url: 'from', valueReference: ref(drA) }, { url: 'reason', valueCode: 'absent' }] }],
  };
  const t = await seedOwnedThread(server, {
    task: { authoredOn: local('19', '09:00'), note: [botNote], meta: { lastUpdated: touchedAfterMessage ? local('27', '10:00') : local('21', '09:00') } },
  });
  // Today: patient writes at 09:00 while Dr B is on shift (kept). Dr B accepts the Task at 10:00
  // (lastUpdated), then calls in sick from 11:00 for a week.
  await seedMessage(server, t.thread, t.patient, local('27', '09:00'));
  await seedBlock(server, t.schedule, local('27', '11:00'), local('30', '17:00'));
  const summary = (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
  const task = await server.read<Task>('Task', t.task.id);
  return { summary, task, t };
}

describe('a person\'s choice made before the patient wrote, and a later edit', () => {
  test('control: owner chosen last week, not touched since the message -> sick owner is rerouted', async () => {
    const { summary, task } = await scenario(false);
    expect(summary.rerouted).toBe(1);
    expect(task.owner).toBeUndefined();
  });
  test('owner chosen last week, Task touched (accepted) after the message -> sick owner should still be rerouted', async () => {
    const { summary, task } = await scenario(true);
    expect(summary.rerouted).toBe(1);
    expect(task.owner).toBeUndefined();
  });
});

describe('a Task made after the patient wrote, never touched by the bot', () => {
  async function madeAfter(minutes: number) {
    const server = createServerMock();
    const wrote = NOW - 60 * 60_000;
    const t = await seedOwnedThread(server, { away: true, task: { authoredOn: new Date(wrote + minutes * 60_000).toISOString(), meta: { lastUpdated: new Date(wrote + minutes * 60_000).toISOString() } } });
    await seedMessage(server, t.thread, t.patient, new Date(wrote).toISOString());
    const summary = (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
    return { summary, task: await server.read<Task>('Task', t.task.id), t };
  }
  test('a hand-off a person made half an hour later, to a colleague away: their choice, kept for that message', async () => {
    const { summary, task, t } = await madeAfter(30);
    expect(summary).toMatchObject({ rerouted: 0 });
    expect(task.owner).toEqual(ref(t.owner));
  });
  test('a Task an integration opened seconds after the message, for an owner away: decided by availability, rerouted', async () => {
    const { summary, task } = await madeAfter(0.2);
    expect(summary).toMatchObject({ rerouted: 1 });
    expect(task.owner).toBeUndefined();
  });
});
