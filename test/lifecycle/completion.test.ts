// Issue #26 item 2: a response Task is completed only by a care-team message that came after its
// question. A hand-off Task (a person assigns it after the care team spoke) waits for the next
// care-team message after it was made; a late-synced reply to the patient completes the bot's Task;
// a reply older than the question never completes anything, and there is no "last message" fallback.
import type { WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { answerOf, isResponseTask, openedAt, parseCoding, parseOnOff, planLifecycle, questionOf, RESPONSE_EPISODE_SYSTEM, RESPONSE_ROUTE_URL } from '../../src/lib/response-lifecycle';
import type { LifecycleConfig, LifecycleThread } from '../../src/lib/response-lifecycle';
import type { RouteFacts } from '../../src/lib/reroute-plan';
import { conversation } from '../../src/lib/thread';
import type { MessagePoint } from '../../src/lib/thread';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedTask, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const at = (ms: number): string => new Date(ms).toISOString();
const ago = (ms: number): string => at(NOW - ms);
const ON = { RESPONSE_TASKS: 'on' };
const CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

interface Clinic {
  server: ServerMock;
  patient: Ref;
  nurse: Ref;
  /** On shift: the doctor the nurse hands off to. */
  drB: Ref;
}

async function clinic(): Promise<Clinic> {
  const server = createServerMock();
  const person = async (): Promise<Ref> => {
    const p = await seedPractitioner(server);
    await seedSchedule(server, [ref(p)]);
    return ref(p);
  };
  return { server, patient: ref(await seedPatient(server)), nurse: await person(), drB: await person() };
}

async function event(c: Clinic, input: Communication): Promise<RerouteSummary> {
  return (await handler(c.server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '60', ...ON }))) as RerouteSummary;
}

async function sweep(c: Clinic): Promise<SweepSummary> {
  return (await handler(c.server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60', ...ON }))) as SweepSummary;
}

async function responseTasks(c: Clinic, thread: Communication): Promise<Task[]> {
  return c.server.searchAll<Task>('Task', `focus=Communication/${thread.id}&code=${CODE.system}|${CODE.code}`);
}

const output = (message: { id: string }): Task['output'] => [{ type: { text: 'Response' }, valueReference: { reference: `Communication/${message.id}` } }];

describe('through the bot', () => {
  test('a hand-off Task assigned after the nurse answered stays open through a sweep and closes on the next care-team reply, with that reply as output', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.nurse] });
    const question = await seedMessage(c.server, thread, c.patient, ago(30 * MINUTE));
    await seedMessage(c.server, thread, c.nurse, ago(20 * MINUTE)); // "I'll ask Dr B"
    // The nurse then assigns a response Task to Dr B: one without input, one naming the (answered) question.
    const bare = await seedTask(c.server, thread, { status: 'requested', owner: c.drB, authoredOn: ago(10 * MINUTE) });
    const naming = await seedTask(c.server, thread, {
      status: 'requested',
      owner: c.drB,
      authoredOn: ago(10 * MINUTE),
      input: [{ type: { text: 'Patient message' }, valueReference: { reference: `Communication/${question.id}` } }],
    });
    expect(await sweep(c)).toMatchObject({ completed: 0, opened: 0, failed: 0 });
    expect((await responseTasks(c, thread)).map((t) => t.status)).toEqual(['requested', 'requested']);

    const answer = await seedMessage(c.server, thread, c.drB, ago(5 * MINUTE));
    expect(await event(c, answer)).toMatchObject({ completed: 2, failed: 0 });
    for (const task of [bare, naming]) {
      expect(await c.server.read<Task>('Task', task.id)).toMatchObject({ status: 'completed', owner: c.drB, output: output(answer) });
    }
    expect(await sweep(c)).toMatchObject({ completed: 0, opened: 0 });
  });

  test('a reply stamped after the patient wrote but stored after the bot opened its Task (late sync) completes it', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.drB] });
    expect(await event(c, await seedMessage(c.server, thread, c.patient, ago(30 * MINUTE)))).toMatchObject({ opened: 1 });
    const [task] = await responseTasks(c, thread);
    expect(task.authoredOn).toBe(at(NOW));

    vi.setSystemTime(NOW + 10 * MINUTE);
    const reply = await seedMessage(c.server, thread, c.drB, ago(20 * MINUTE), { meta: { lastUpdated: at(NOW + 10 * MINUTE) } });
    expect(await sweep(c)).toMatchObject({ completed: 1, failed: 0 });
    expect(await c.server.read<Task>('Task', task.id as string)).toMatchObject({ status: 'completed', output: output(reply) });
  });

  test('the bot\'s Task is not completed by a care-team message sent before its opening patient message, even when that message is the last one left', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.drB] });
    await seedMessage(c.server, thread, c.drB, ago(60 * MINUTE)); // answered an earlier question
    const opening = await seedMessage(c.server, thread, c.patient, ago(30 * MINUTE));
    await event(c, opening);
    const [task] = await responseTasks(c, thread);
    expect(task.input?.[0].valueReference?.reference).toBe(`Communication/${opening.id}`);
    // The opening message leaves the conversation (entered in error): the care team's earlier
    // message is now the last one, but it answers nothing this Task asks.
    await c.server.medplum.updateResource({ ...opening, status: 'entered-in-error' });
    expect(await sweep(c)).toMatchObject({ completed: 0, failed: 0 });
    expect((await c.server.read<Task>('Task', task.id as string)).status).toBe('requested');

    vi.setSystemTime(NOW + 10 * MINUTE);
    const reply = await seedMessage(c.server, thread, c.drB, at(NOW + 5 * MINUTE));
    expect(await event(c, reply)).toMatchObject({ completed: 1 });
    expect(await c.server.read<Task>('Task', task.id as string)).toMatchObject({ status: 'completed', output: output(reply) });
  });
});

describe('planLifecycle and answerOf (pure)', () => {
  const config: LifecycleConfig = { enabled: true, code: CODE };
  const route: RouteFacts = { now: NOW, owner: () => undefined, coverage: {}, serviceTypes: [] };
  const header: WithId<Communication> = { resourceType: 'Communication', id: 'h', meta: { versionId: '1' }, status: 'in-progress', subject: { reference: 'Patient/p' } };
  const point = (id: string, sender: string, minutesAgo: number): MessagePoint => ({
    ref: `Communication/${id}`,
    time: NOW - minutesAgo * MINUTE,
    role: sender.startsWith('Patient') ? 'patient' : 'care-team',
    sender,
  });
  const input = (id: string): Task['input'] => [{ type: { text: 'Patient message' }, valueReference: { reference: `Communication/${id}` } }];
  const task = (id: string, over: Partial<Task>): WithId<Task> => ({ resourceType: 'Task', id, meta: { versionId: '1' }, status: 'requested', intent: 'order', code: { coding: [CODE] }, ...over });
  /** The bot's own Task: the episode identifier, made `minutesAgo`. */
  const bots = (opening: string, minutesAgo: number): WithId<Task> =>
    task('bot', { identifier: [{ system: RESPONSE_EPISODE_SYSTEM, value: 'h:after:start' }], input: input(opening), authoredOn: ago(minutesAgo * MINUTE) });
  const lifecycle = (points: MessagePoint[], tasks: WithId<Task>[]): LifecycleThread => ({ thread: 'Communication/h', header, tasks, conversation: conversation(points) });
  const completed = (points: MessagePoint[], tasks: WithId<Task>[]): [string, string | undefined][] =>
    planLifecycle(lifecycle(points, tasks), route, config).decisions.map((d) => [d.task, d.target]);

  test('hand-off: the nurse answered, then assigned a Task; her message does not complete it, the next care-team message does', () => {
    const handedOff = [point('p1', 'Patient/p', 30), point('n1', 'Practitioner/nurse', 20)];
    const handOff = task('h1', { owner: { reference: 'Practitioner/b' }, authoredOn: ago(10 * MINUTE) });
    expect(completed(handedOff, [handOff])).toEqual([]);
    expect(completed([...handedOff, point('b1', 'Practitioner/b', 5), point('b2', 'Practitioner/b', 1)], [handOff])).toEqual([['Task/h1', 'Communication/b1']]);
    // Naming the patient message it hands off does not make the nurse's answer count.
    const naming = { ...handOff, input: input('p1') };
    expect(questionOf(naming, conversation(handedOff))).toEqual({ kind: 'hand-off', since: NOW - 10 * MINUTE });
    expect(completed(handedOff, [naming])).toEqual([]);
    // No authoredOn: meta.lastUpdated is when it was made.
    const stamped = task('h2', { meta: { versionId: '1', lastUpdated: ago(10 * MINUTE) } });
    expect(completed(handedOff, [stamped])).toEqual([]);
    expect(completed([...handedOff, point('b1', 'Practitioner/b', 5)], [stamped])).toEqual([['Task/h2', 'Communication/b1']]);
  });

  test('a person\'s Task naming a patient message still waiting when it was made asks that message: any reply after it completes it', () => {
    const waiting = [point('n0', 'Practitioner/nurse', 60), point('p1', 'Patient/p', 30)];
    const assigned = task('a1', { input: input('p1'), authoredOn: ago(20 * MINUTE) });
    expect(questionOf(assigned, conversation(waiting))).toMatchObject({ kind: 'message', message: { ref: 'Communication/p1' } });
    expect(completed([...waiting, point('r1', 'Practitioner/b', 10)], [assigned])).toEqual([['Task/a1', 'Communication/r1']]);
    // A late-synced reply stamped before the person made the Task cannot be told from a hand-off message: it does not count.
    expect(completed([...waiting, point('r0', 'Practitioner/b', 25)], [assigned])).toEqual([]);
  });

  test('the bot\'s Task: a late-synced reply stamped before the Task counts; one before its opening message never does', () => {
    const late = [point('n0', 'Practitioner/nurse', 60), point('p1', 'Patient/p', 30), point('r1', 'Practitioner/b', 20)];
    expect(completed(late, [bots('p1', 10)])).toEqual([['Task/bot', 'Communication/r1']]);
    // Recognised in the sweep's read, which carries notes but no identifiers, by its route note.
    const noted = { ...bots('p1', 10), identifier: undefined, note: [{ text: 'Assigned to …', extension: [{ url: RESPONSE_ROUTE_URL, extension: [] }] }] };
    expect(completed(late, [noted])).toEqual([['Task/bot', 'Communication/r1']]);
    // The opening message is not in the conversation read (a bounded read, entered in error): only a reply after the Task counts.
    const bounded = [point('n0', 'Practitioner/nurse', 60)];
    expect(completed(bounded, [bots('gone', 10)])).toEqual([]);
    expect(completed([...late, point('r2', 'Practitioner/b', 5)], [bots('gone', 10)])).toEqual([['Task/bot', 'Communication/r2']]);
  });

  test('a reply at the same instant as the question answers it when it is ordered after it, as in every other reader', () => {
    const tied = [point('a', 'Patient/p', 30), point('b', 'Practitioner/b', 30)];
    expect(completed(tied, [bots('a', 10)])).toEqual([['Task/bot', 'Communication/b']]);
  });

  test('two Tasks, two questions: a reply between them completes only the one it answers', () => {
    const points = [point('p1', 'Patient/p', 30), point('r1', 'Practitioner/nurse', 20)];
    const handOff = task('h1', { authoredOn: ago(15 * MINUTE) });
    expect(completed(points, [bots('p1', 25), handOff])).toEqual([['Task/bot', 'Communication/r1']]);
  });

  test('a Task with no time and no opening message found is never completed; how far back completion looks', () => {
    const points = [point('p1', 'Patient/p', 30), point('r1', 'Practitioner/nurse', 20)];
    expect(answerOf(task('x', {}), conversation(points))).toBeUndefined();
    expect(answerOf(task('x', { input: input('gone') }), conversation(points))).toBeUndefined();
    expect(answerOf({ resourceType: 'Task', status: 'requested', intent: 'order' }, conversation(points))).toBeUndefined();
    expect(openedAt(task('x', {}), conversation(points))).toBe(0);
    expect(openedAt(task('x', { input: input('p1'), authoredOn: ago(10 * MINUTE) }), conversation(points))).toBe(NOW - 30 * MINUTE);
    expect(openedAt(task('x', { input: input('p1'), authoredOn: ago(40 * MINUTE) }), conversation(points))).toBe(NOW - 40 * MINUTE);
    expect(openedAt(task('x', { input: input('gone'), meta: { lastUpdated: ago(5 * MINUTE) } }), conversation(points))).toBe(NOW - 5 * MINUTE);
  });
});

test('settings and the response code: every part must match (found loose by mutation testing)', () => {
  expect(parseCoding('  |x')).toMatchObject({ error: expect.any(String) });
  expect(parseOnOff(' OFF ')).toEqual({ on: false });
  expect(parseOnOff('no')).toMatchObject({ error: 'must be on or off' });
  const task: Task = { resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [{ system: 'http://example.com', code: CODE.code }] } };
  expect(isResponseTask(task, CODE)).toBe(false);
  expect(isResponseTask({ ...task, code: { coding: [{ system: CODE.system, code: 'other' }] } }, CODE)).toBe(false);
  expect(isResponseTask({ ...task, code: { coding: [CODE] } }, CODE)).toBe(true);
});
