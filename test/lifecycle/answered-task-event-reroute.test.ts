// The event path and the sweep decide the same for the same thread (RESPONSE_TASKS=on). A hostile
// review's sequence: the patient writes, a response Task opens for Dr B; Dr B replies but that event is
// lost; Dr B's shift ends; the patient writes again and that event runs. It used to skip the lifecycle
// (a response Task was open) and send the ANSWERED Task to the pool; the next sweep then completed it
// with no owner (Dr B's reply no longer counted as Dr B's in the SLA figures) and opened the new
// episode's Task. The event now reads the conversation when it would move a response Task and plans
// as the sweep does: the answered Task is completed with Dr B as owner and the reply as output, the new
// question's Task is opened and routed, and the answered one is not rerouted.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { RESPONSE_EPISODE_SYSTEM } from '../../src/lib/response-lifecycle';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { RecordedRequest, ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const at = (ms: number): string => new Date(ms).toISOString();
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(NOW);

const event = async (s: ServerMock, m: Communication): Promise<RerouteSummary> => (await handler(s.medplum, botEvent(m, ON))) as RerouteSummary;
const sweep = async (s: ServerMock): Promise<SweepSummary> => (await handler(s.medplum, botEvent(CRON, ON))) as SweepSummary;
const responseTasks = (s: ServerMock, thread: Communication): Promise<Task[]> =>
  s.searchAll<Task>('Task', `focus=Communication/${thread.id}&code=${CODE.system}|${CODE.code}`);
const isOpen = (t: Task): boolean => !['completed', 'cancelled', 'failed', 'rejected', 'entered-in-error'].includes(t.status);
const conversationRead = (r: RecordedRequest): boolean => r.method === 'GET' && r.path === 'Communication' && decodeURIComponent(r.url).includes('part-of=');

/** Dr B works until 10:30 New York (15:30Z); Dr C, also on the thread, 09:00 to 17:00. The first question's Task goes to Dr B. */
async function setup(): Promise<{ server: ServerMock; patient: Ref; drB: Ref; drC: Ref; thread: Communication & { id: string }; first: Task }> {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  const drC = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB], { availability: [{ from: '02:30:00', hours: 8 }] });
  await seedSchedule(server, [drC]);
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient, recipient: [patient, drB, drC] });
  expect(await event(server, await seedMessage(server, thread, patient, at(NOW - 30 * MINUTE)))).toMatchObject({ opened: 1 });
  const [first] = await responseTasks(server, thread);
  expect(first.owner).toEqual(drB);
  return { server, patient, drB, drC, thread, first };
}

describe('the event of a new patient message when the open response Task would move', () => {
  test('the Task the care team already answered (reply event lost) is completed with its owner and answer, the new question gets its own routed Task, nothing is rerouted', async () => {
    const { server, patient, drB, drC, thread, first } = await setup();
    const reply = await seedMessage(server, thread, drB, at(NOW + 5 * MINUTE)); // its event lost
    vi.setSystemTime(NOW + 40 * MINUTE); // 15:57Z: Dr B is off shift
    const again = await seedMessage(server, thread, patient, at(NOW + 40 * MINUTE));

    server.resetCounts();
    const summary = await event(server, again);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0, completed: 1, opened: 1, conflicts: 0, failed: 0 });
    expect(summary.decisions.filter((d) => d.action !== 'kept')).toEqual([]);
    // The published cost: the follow-up's 40, the conversation 20, the new Task's candidates 40 (Dr C), a completion 100 and a conditional create 120.
    expect(server.count(conversationRead)).toBe(1);
    expect(server.points()).toBe(320);

    const done = await server.read<Task>('Task', first.id as string);
    expect(done).toMatchObject({
      status: 'completed',
      owner: drB, // the reply stays Dr B's in the SLA figures
      output: [{ type: { text: 'Response' }, valueReference: { reference: `Communication/${reply.id}` } }],
    });
    expect(done.performerType).toBeUndefined();
    const open = (await responseTasks(server, thread)).filter(isOpen);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({
      identifier: [{ system: RESPONSE_EPISODE_SYSTEM, value: `${thread.id}:after:${reply.id}` }],
      input: [{ valueReference: { reference: `Communication/${again.id}` } }],
      owner: drC, // available now, on the thread
    });

    // The sweep agrees: nothing left to do.
    vi.setSystemTime(NOW + 45 * MINUTE);
    expect(await sweep(server)).toMatchObject({ completed: 0, opened: 0, existed: 0, rerouted: 0, conflicts: 0, failed: 0 });
    expect((await server.read<Task>('Task', first.id as string)).owner).toEqual(drB);
  });

  test('a Task nobody answered moves as before, for 20 points more (the conversation says it was not answered); nothing is opened', async () => {
    const { server, patient, drB, thread, first } = await setup();
    vi.setSystemTime(NOW + 40 * MINUTE); // Dr B is off shift, and never replied
    const again = await seedMessage(server, thread, patient, at(NOW + 40 * MINUTE));
    server.resetCounts();
    const summary = await event(server, again);
    expect(summary).toMatchObject({ rerouted: 1, completed: 0, opened: 0, failed: 0 });
    expect(summary.decisions).toEqual([expect.objectContaining({ task: `Task/${first.id}`, action: 'to-pool', owner: drB.reference })]);
    expect(server.count(conversationRead)).toBe(1);
    expect(server.points()).toBe(160); // 140 at the end of a shift + 20
    const open = (await responseTasks(server, thread)).filter(isOpen);
    expect(open.map((t) => t.id)).toEqual([first.id]);
    expect(open[0].owner).toBeUndefined();
  });

  test('control: a fresh follow-up while the Task stays (its owner available) costs 40 and reads no conversation, answered or not', async () => {
    const { server, patient, drB, thread, first } = await setup();
    await seedMessage(server, thread, drB, at(NOW + 5 * MINUTE)); // answered, event lost
    vi.setSystemTime(NOW + 10 * MINUTE); // Dr B still on shift
    const again = await seedMessage(server, thread, patient, at(NOW + 10 * MINUTE));
    server.resetCounts();
    expect(await event(server, again)).toMatchObject({ rerouted: 0, completed: 0, opened: 0, kept: 1 });
    expect(server.count(conversationRead)).toBe(0);
    expect(server.points()).toBe(40);
    expect(await server.read<Task>('Task', first.id as string)).toMatchObject({ status: 'requested', owner: drB });
  });
});
