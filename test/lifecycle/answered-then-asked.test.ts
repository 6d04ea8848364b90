// Issue #28, invariant 5 (`open-after-reply`): the care team's reply reaches no event (lost, or the
// bot off) and the patient writes again before the next sweep. The answered Task must not stand for
// the new question: the sweep completes it with that reply as its output and opens the new
// episode's own Task (identifier `<thread>:after:<reply>`), one open response Task at a time.
// As in the simulation's seed 1 (th523): Task/b11383 answered by m2799, event lost, m2800 16 minutes
// later, the sweep left it open.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { RESPONSE_EPISODE_SYSTEM } from '../../src/lib/response-lifecycle';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const at = (ms: number): string => new Date(ms).toISOString();
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

async function event(server: ServerMock, input: Communication): Promise<RerouteSummary> {
  return (await handler(server.medplum, botEvent(input, ON))) as RerouteSummary;
}

async function sweep(server: ServerMock): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
}

async function responseTasks(server: ServerMock, thread: Communication): Promise<Task[]> {
  return server.searchAll<Task>('Task', `focus=Communication/${thread.id}&code=${CODE.system}|${CODE.code}`);
}

const isOpen = (t: Task): boolean => !['completed', 'cancelled', 'failed', 'rejected', 'entered-in-error'].includes(t.status);

describe('a reply no event saw, then a new patient message before the sweep', () => {
  async function setup(schedule: { from: string; hours: number }): Promise<{ server: ServerMock; patient: Ref; drB: Ref; thread: Communication & { id: string } }> {
    const server = createServerMock();
    const drB = ref(await seedPractitioner(server));
    await seedSchedule(server, [drB], { availability: [{ from: schedule.from, hours: schedule.hours }] });
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
    return { server, patient, drB, thread };
  }

  test('the sweep completes the answered Task with the reply as output and opens the new question its own Task', async () => {
    const { server, patient, drB, thread } = await setup({ from: '09:00:00', hours: 8 });
    const question = await seedMessage(server, thread, patient, at(NOW - 30 * MINUTE));
    expect(await event(server, question)).toMatchObject({ opened: 1 });
    const [first] = await responseTasks(server, thread);

    // Dr B answers; the event is lost. The patient writes again; its event finds a Task open (a follow-up).
    vi.setSystemTime(NOW + 16 * MINUTE);
    const reply = await seedMessage(server, thread, drB, at(NOW + 2 * MINUTE));
    const again = await seedMessage(server, thread, patient, at(NOW + 15 * MINUTE));
    await event(server, again);

    vi.setSystemTime(NOW + 18 * MINUTE);
    expect(await sweep(server)).toMatchObject({ completed: 1, opened: 1, conflicts: 0, failed: 0 });
    const tasks = await responseTasks(server, thread);
    expect(tasks.find((t) => t.id === first.id)).toMatchObject({
      status: 'completed',
      output: [{ type: { text: 'Response' }, valueReference: { reference: `Communication/${reply.id}` } }],
    });
    const open = tasks.filter(isOpen);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({
      identifier: [{ system: RESPONSE_EPISODE_SYSTEM, value: `${thread.id}:after:${reply.id}` }],
      input: [{ valueReference: { reference: `Communication/${again.id}` } }],
      owner: drB, // the care-team person who last wrote, on shift
    });

    // The next sweep changes nothing: one Task per episode.
    vi.setSystemTime(NOW + 33 * MINUTE);
    expect(await sweep(server)).toMatchObject({ completed: 0, opened: 0, existed: 0, rerouted: 0 });
    expect((await responseTasks(server, thread)).filter(isOpen).map((t) => t.id)).toEqual([open[0].id]);
  });

  test('an answered Task whose owner has gone off shift is completed, not rerouted (no conflict between the two)', async () => {
    // Dr B works until 10:30 New York (15:30Z): the new question comes after.
    const { server, patient, drB, thread } = await setup({ from: '02:30:00', hours: 8 });
    const question = await seedMessage(server, thread, patient, at(NOW - 30 * MINUTE));
    expect(await event(server, question)).toMatchObject({ opened: 1 });
    const [first] = await responseTasks(server, thread);
    expect(first.owner).toEqual(drB);

    const reply = await seedMessage(server, thread, drB, at(NOW + 5 * MINUTE)); // event lost
    vi.setSystemTime(NOW + 40 * MINUTE); // 15:57Z: Dr B is off shift
    await seedMessage(server, thread, patient, at(NOW + 35 * MINUTE)); // its event lost too

    const summary = await sweep(server);
    expect(summary).toMatchObject({ completed: 1, opened: 1, rerouted: 0, conflicts: 0, failed: 0 });
    const done = await server.read<Task>('Task', first.id as string);
    expect(done).toMatchObject({ status: 'completed', owner: drB, output: [{ valueReference: { reference: `Communication/${reply.id}` } }] });
    const open = (await responseTasks(server, thread)).filter(isOpen);
    expect(open).toHaveLength(1);
    expect(open[0].owner).toBeUndefined(); // nobody on the thread is available: the pool
  });

  test('the event of a reply stored after the patient wrote again leaves the thread to the sweep, which completes the answered Task and opens and routes the new one together', async () => {
    const { server, patient, drB, thread } = await setup({ from: '09:00:00', hours: 8 });
    expect(await event(server, await seedMessage(server, thread, patient, at(NOW - 30 * MINUTE)))).toMatchObject({ opened: 1 });
    const [first] = await responseTasks(server, thread);
    vi.setSystemTime(NOW + 16 * MINUTE);
    const again = await seedMessage(server, thread, patient, at(NOW + 15 * MINUTE));
    await event(server, again);
    // Dr B's reply was sent before the follow-up but stored (and delivered) after it.
    const reply = await seedMessage(server, thread, drB, at(NOW + 2 * MINUTE), { meta: { lastUpdated: at(NOW + 16 * MINUTE) } });
    server.resetCounts();
    // The event read no owners to route a new Task: it completes nothing either (the patient is never left without an open Task).
    expect(await event(server, reply)).toMatchObject({ completed: 0, opened: 0, failed: 0 });
    expect(server.points()).toBeLessThanOrEqual(140); // no more than the published cost of a completion
    expect(await server.read<Task>('Task', first.id as string)).toMatchObject({ status: 'requested' });

    vi.setSystemTime(NOW + 18 * MINUTE);
    expect(await sweep(server)).toMatchObject({ opened: 1, completed: 1 });
    expect(await server.read<Task>('Task', first.id as string)).toMatchObject({ status: 'completed', output: [{ valueReference: { reference: `Communication/${reply.id}` } }] });
    const open = (await responseTasks(server, thread)).filter(isOpen);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ owner: drB, input: [{ valueReference: { reference: `Communication/${again.id}` } }] });
  });

  test('a Task nobody answered still stands for the follow-up: nothing completed, nothing opened', async () => {
    const { server, patient, thread } = await setup({ from: '09:00:00', hours: 8 });
    expect(await event(server, await seedMessage(server, thread, patient, at(NOW - 30 * MINUTE)))).toMatchObject({ opened: 1 });
    vi.setSystemTime(NOW + 16 * MINUTE);
    await seedMessage(server, thread, patient, at(NOW + 15 * MINUTE));
    expect(await sweep(server)).toMatchObject({ completed: 0, opened: 0, existed: 0 });
    expect((await responseTasks(server, thread)).filter(isOpen)).toHaveLength(1);
  });
});
