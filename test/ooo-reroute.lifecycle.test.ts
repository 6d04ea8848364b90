// The response-Task lifecycle (RESPONSE_TASKS=on): open a Task when a patient writes, route it,
// complete it when the care team answers, cancel it when the thread closes; the sweep reconciles.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import type { WithId } from '@medplum/core';
import type { OwnerFacts } from '../src/lib/availability';
import { chooseOwner, coversToRead, lastCareTeamWriter, openedAt, opensTask, parseCoding, planLifecycle, routeCandidates } from '../src/lib/response-lifecycle';
import type { LifecycleConfig, LifecycleThread } from '../src/lib/response-lifecycle';
import type { RouteFacts } from '../src/lib/reroute-plan';
import { conversation } from '../src/lib/thread';
import type { MessagePoint } from '../src/lib/thread';
import { tallyLifecycle } from '../src/realtime/summary';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent, ref, seedBlock, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedTask, seedThread } from './harness/fixtures';
import type { Ref } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import type { ServerMock } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const ON = { RESPONSE_TASKS: 'on' };
const CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

interface Clinic {
  server: ServerMock;
  patient: Ref;
  /** On shift, with a name. */
  onShift: Ref;
  /** On vacation. */
  away: Ref;
  /** Works Mondays only: off shift on this Friday. */
  offShift: Ref;
}

async function clinic(): Promise<Clinic> {
  const server = createServerMock();
  const person = async (kind: 'on' | 'away' | 'off'): Promise<Ref> => {
    const p = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(p)], kind === 'off' ? { availability: [{ days: ['mon'] }] } : {});
    if (kind === 'away') {
      await seedBlock(server, schedule, ago(7 * 24 * 60 * MINUTE), new Date(NOW + 7 * 24 * 60 * MINUTE).toISOString());
    }
    return ref(p);
  };
  return { server, patient: ref(await seedPatient(server)), onShift: await person('on'), away: await person('away'), offShift: await person('off') };
}

async function say(c: Clinic, thread: Communication, sender: Ref, sentAgo: number): Promise<Communication & { id: string }> {
  return seedMessage(c.server, thread, sender, ago(sentAgo));
}

async function event(c: Clinic, input: Communication, secrets: Record<string, string> = ON): Promise<RerouteSummary> {
  return (await handler(c.server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '60', ...secrets }))) as RerouteSummary;
}

async function sweep(c: Clinic, secrets: Record<string, string> = ON): Promise<SweepSummary> {
  return (await handler(c.server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60', ...secrets }))) as SweepSummary;
}

async function responseTasks(c: Clinic, thread: Communication): Promise<Task[]> {
  return c.server.searchAll<Task>('Task', `focus=Communication/${thread.id}&code=${CODE.system}|${CODE.code}`);
}

const logLines = (): string[] => vi.mocked(console.log).mock.calls.map((call) => String(call[0]));

describe('off by default: an upgrade changes nothing', () => {
  test('without RESPONSE_TASKS, a patient message opens nothing and a care-team message is ignored', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    const m = await say(c, thread, c.patient, MINUTE);
    expect(await event(c, m, {})).toMatchObject({ opened: 0 });
    const reply = await say(c, thread, c.onShift, 0);
    expect(await event(c, reply, {})).toMatchObject({ outcome: 'ignored' });
    expect(await sweep(c, {})).toMatchObject({ opened: 0, completed: 0 });
    expect(await responseTasks(c, thread)).toEqual([]);
  });

  test('RESPONSE_TASKS other than on or off: one warning, off', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient });
    expect(await event(c, await say(c, thread, c.patient, MINUTE), { RESPONSE_TASKS: 'yes' })).toMatchObject({ opened: 0 });
    expect(logLines()).toContain('[ooo-reroute] WARN secret RESPONSE_TASKS: must be on or off; using the default');
  });
});

describe('open: a patient writes in a thread with no open response Task', () => {
  test('one Task in the shape of Medplum\'s response tracking, routed to the care-team person who last wrote, with a note in words', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, priority: 'urgent', recipient: [c.patient, c.offShift, c.onShift] });
    const answer = await say(c, thread, c.onShift, 60 * MINUTE);
    const m = await say(c, thread, c.patient, MINUTE);
    expect(await event(c, m)).toMatchObject({ opened: 1, existed: 0 });
    const [task] = await responseTasks(c, thread);
    expect(task).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'urgent',
      code: { coding: [CODE] },
      focus: { reference: `Communication/${thread.id}` },
      for: c.patient,
      authoredOn: new Date(NOW).toISOString(),
      owner: c.onShift,
      identifier: [{ system: 'urn:medplum-messaging-bots:response-episode', value: `${thread.id}:after:${answer.id}` }],
      input: [{ type: { text: 'Patient message' }, valueReference: { reference: `Communication/${m.id}` } }],
    });
    expect(task.note?.[0].text).toBe('Assigned to Pat PHI-PRACTITIONER-NAME, who last wrote in this thread and is on shift.');
    expect(task.performerType).toBeUndefined();
  });

  test('a header without priority gives a routine Task; no care-team message yet: the first available recipient', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.away, c.onShift] });
    await event(c, await say(c, thread, c.patient, MINUTE));
    const [task] = await responseTasks(c, thread);
    expect(task).toMatchObject({ priority: 'routine', owner: c.onShift, identifier: [{ value: `${thread.id}:after:start` }] });
    expect(task.note?.[0].text).toBe('Assigned to Pat PHI-PRACTITIONER-NAME, on this thread and on shift; Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
  });

  test('nobody on the thread available: their cover, if available; else the pool with RESPONSE_POOL as performerType', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.away, c.offShift] });
    const cover = { OOO_COVERAGE: JSON.stringify({ [c.offShift.reference]: c.onShift.reference }) };
    await event(c, await say(c, thread, c.patient, MINUTE), { ...ON, ...cover });
    expect((await responseTasks(c, thread))[0]).toMatchObject({ owner: c.onShift });

    const pooled = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.away, c.offShift] });
    const pool = { RESPONSE_POOL: 'http://snomed.info/sct|224535009' };
    await event(c, await say(c, pooled, c.patient, MINUTE), { ...ON, ...pool });
    const [task] = await responseTasks(c, pooled);
    expect(task.owner).toBeUndefined();
    expect(task.performerType).toEqual([{ coding: [{ system: 'http://snomed.info/sct', code: '224535009' }] }]);
    expect(task.note?.[0].text).toMatch(/^Sent to the team pool: no one on this thread is available \(.+ is away .+; .+ is outside their working hours\)\.$/);
  });

  test('the same message delivered twice: one Task', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    const m = await say(c, thread, c.patient, MINUTE);
    await event(c, m);
    expect(await event(c, m)).toMatchObject({ opened: 0 });
    expect(await responseTasks(c, thread)).toHaveLength(1);
  });

  test('two patient messages at once in one thread: one Task', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    const first = await say(c, thread, c.patient, 2 * MINUTE);
    const second = await say(c, thread, c.patient, MINUTE);
    const results = await Promise.all([event(c, first), event(c, second)]);
    expect(results.reduce((n, r) => n + r.opened, 0)).toBe(1);
    expect(results.reduce((n, r) => n + r.opened + r.existed, 0)).toBe(2);
    expect(await responseTasks(c, thread)).toHaveLength(1);
  });

  test('a follow-up while a Task is open opens nothing new', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await event(c, await say(c, thread, c.patient, 5 * MINUTE));
    expect(await event(c, await say(c, thread, c.patient, MINUTE))).toMatchObject({ opened: 0, existed: 0 });
    expect(await responseTasks(c, thread)).toHaveLength(1);
  });

  test('an automated acknowledgement neither opens nor completes a Task, and does not end the wait', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    const m = await say(c, thread, c.patient, 2 * MINUTE);
    const ack = await say(c, thread, { reference: 'Device/auto-ack' }, MINUTE);
    expect(await event(c, ack)).toMatchObject({ outcome: 'ignored' });
    await event(c, m);
    expect(await sweep(c)).toMatchObject({ opened: 0, completed: 0 });
    expect((await responseTasks(c, thread))[0]).toMatchObject({ status: 'requested' });
  });
});

describe('complete: the care team answers', () => {
  test('a reply completes every open response Task of the thread, output the reply, the replier as owner when there was none', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.away] });
    await event(c, await say(c, thread, c.patient, 10 * MINUTE)); // to the pool: the only recipient is away
    const other = await seedTask(c.server, thread, { owner: c.offShift, status: 'accepted' });
    const unrelated = await seedTask(c.server, thread, { code: { coding: [{ system: 'http://example.com', code: 'lab' }] } });
    const reply = await say(c, thread, c.onShift, MINUTE);
    expect(await event(c, reply)).toMatchObject({ completed: 2 });
    const tasks = await c.server.searchAll<Task>('Task', `focus=Communication/${thread.id}`);
    const pooled = tasks.find((t) => t.identifier);
    expect(pooled).toMatchObject({ status: 'completed', owner: c.onShift, output: [{ type: { text: 'Response' }, valueReference: { reference: `Communication/${reply.id}` } }] });
    expect(tasks.find((t) => t.id === other.id)).toMatchObject({ status: 'completed', owner: c.offShift });
    expect(tasks.find((t) => t.id === unrelated.id)?.status).toBe('in-progress');
    expect(pooled?.note?.at(-1)?.text).toBe('Completed: the care team replied in this thread.');
  });

  test('the output is the first reply after the patient wrote, even when the sweep completes it later', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await event(c, await say(c, thread, c.patient, 30 * MINUTE));
    const first = await say(c, thread, c.onShift, 20 * MINUTE); // its event was lost
    await say(c, thread, c.onShift, 10 * MINUTE);
    expect(await sweep(c)).toMatchObject({ completed: 1 });
    expect((await responseTasks(c, thread))[0].output).toEqual([{ type: { text: 'Response' }, valueReference: { reference: `Communication/${first.id}` } }]);
  });

  test('a new patient message after the answer opens a new episode: a second Task', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await event(c, await say(c, thread, c.patient, 30 * MINUTE));
    await event(c, await say(c, thread, c.onShift, 20 * MINUTE));
    expect(await event(c, await say(c, thread, c.patient, MINUTE))).toMatchObject({ opened: 1 });
    expect((await responseTasks(c, thread)).map((t) => t.status).sort()).toEqual(['completed', 'requested']);
  });
});

describe('the sweep reconciles what events missed', () => {
  test('lost events: a waiting thread gets its Task, an answered one is completed, a closed one is cancelled; a second sweep changes nothing', async () => {
    const c = await clinic();
    const waiting = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await say(c, waiting, c.patient, 30 * MINUTE);
    const answered = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    const open = await seedTask(c.server, answered, { owner: c.onShift, authoredOn: ago(60 * MINUTE) });
    await say(c, answered, c.patient, 60 * MINUTE);
    await say(c, answered, c.onShift, 5 * MINUTE);
    const closed = await seedThread(c.server, { subject: c.patient, status: 'completed' });
    const orphan = await seedTask(c.server, closed, { owner: c.onShift });
    expect(await sweep(c)).toMatchObject({ opened: 1, completed: 1, cancelled: 1, failed: 0 });
    expect((await responseTasks(c, waiting))[0]).toMatchObject({ owner: c.onShift, status: 'requested' });
    expect((await c.server.read<Task>('Task', open.id)).status).toBe('completed');
    const cancelled = await c.server.read<Task>('Task', orphan.id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.note?.at(-1)?.text).toBe('Cancelled: the thread is completed.');
    expect(await sweep(c)).toMatchObject({ opened: 0, existed: 0, completed: 0, cancelled: 0 });
  });

  test('a thread whose header was deleted: its response Tasks are cancelled', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient });
    const task = await seedTask(c.server, thread, { owner: c.onShift });
    await c.server.medplum.deleteResource('Communication', thread.id);
    expect(await sweep(c)).toMatchObject({ cancelled: 1 });
    expect((await c.server.read<Task>('Task', task.id)).note?.at(-1)?.text).toBe('Cancelled: the thread was deleted.');
  });

  test('only threads with a message in the last day are read for a missing Task: an old waiting thread is left to the stale bot', async () => {
    const c = await clinic();
    const old = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await seedMessage(c.server, old, c.patient, ago(3 * 24 * 60 * MINUTE));
    expect(await sweep(c)).toMatchObject({ threadsRead: 0, opened: 0 });
  });

  test('300 patient messages in 300 new threads, every event lost: one sweep opens 300 Tasks, none twice', { timeout: 60_000 }, async () => {
    const c = await clinic();
    const threads: Communication[] = [];
    for (let i = 0; i < 300; i++) {
      const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, i % 2 ? c.onShift : c.away] });
      await say(c, thread, c.patient, MINUTE + i);
      threads.push(thread);
    }
    const summary = await sweep(c);
    expect(summary).toMatchObject({ opened: 300, failed: 0, stoppedEarly: false });
    expect(await sweep(c)).toMatchObject({ opened: 0 });
    const all = await c.server.searchAll<Task>('Task', `code=${CODE.system}|${CODE.code}`);
    expect(all).toHaveLength(300);
    expect(new Set(all.map((t) => t.focus?.reference)).size).toBe(300);
    // The away recipient's threads went to the pool, the on-shift recipient's to them.
    expect(all.filter((t) => t.owner?.reference === c.onShift.reference)).toHaveLength(150);
  });
});

describe('these Tasks are rerouted like any response Task', () => {
  test('the owner goes on vacation; the patient writes again: the Task goes to the pool with a reroute note', async () => {
    const c = await clinic();
    const owner = await seedPractitioner(c.server);
    const schedule = await seedSchedule(c.server, [ref(owner)]);
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, ref(owner)] });
    await event(c, await say(c, thread, c.patient, 30 * MINUTE));
    expect((await responseTasks(c, thread))[0].owner).toEqual(ref(owner));
    await seedBlock(c.server, schedule, ago(MINUTE), new Date(NOW + 24 * 60 * MINUTE).toISOString());
    expect(await event(c, await say(c, thread, c.patient, 0))).toMatchObject({ rerouted: 1, opened: 0 });
    const [task] = await responseTasks(c, thread);
    expect(task.owner).toBeUndefined();
    expect(task.note?.at(-1)?.text).toBe('Returned to the team pool: Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
  });
});

describe('settings and pure pieces', () => {
  test('system|code values', () => {
    expect(parseCoding('http://snomed.info/sct|224535009')).toEqual({ coding: { system: 'http://snomed.info/sct', code: '224535009' } });
    for (const bad of ['224535009', '|x', 'x|', 'a|b|c']) {
      expect(parseCoding(bad)).toMatchObject({ error: expect.any(String) });
    }
  });

  test('RESPONSE_TASK_CODE names the code of the Tasks opened and completed; a malformed one warns and keeps the default', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await event(c, await say(c, thread, c.patient, MINUTE), { ...ON, RESPONSE_TASK_CODE: 'http://example.com/tasks|answer-patient' });
    expect((await c.server.searchAll<Task>('Task', 'code=http://example.com/tasks|answer-patient'))).toHaveLength(1);
    const other = await seedThread(c.server, { subject: c.patient, recipient: [c.patient, c.onShift] });
    await event(c, await say(c, other, c.patient, MINUTE), { ...ON, RESPONSE_TASK_CODE: 'answer-patient' });
    expect(await responseTasks(c, other)).toHaveLength(1);
    expect(logLines()).toContain('[ooo-reroute] WARN secret RESPONSE_TASK_CODE: must be system|code, like https://medplum.com/task-codes|respond-to-message; using the default');
  });

  test('routing with no candidate at all says so', () => {
    expect(chooseOwner([], undefined, { now: NOW, owner: () => undefined, coverage: {}, serviceTypes: [] })).toEqual({
      reason: 'pool',
      text: 'Sent to the team pool: no care-team member has written in or been added to this thread yet.',
    });
  });
});

test('a conditional create refused as a concurrent write (409, seen under load on a real server) is a conflict to retry; only 412 means one exists', () => {
  const plan = { thread: 'Communication/t', decisions: [{ action: 'open' as const, task: 't:after:start', reason: 'pool' }], entries: [] };
  const log = { info: () => undefined, warn: () => undefined };
  const counts = { opened: 0, existed: 0, completed: 0, cancelled: 0 };
  expect(tallyLifecycle(counts, plan, [{ kind: 'conflict', status: '409', error: 'Conflict' }], log)).toMatchObject({ conflicts: 1 });
  expect(counts.existed).toBe(0);
  expect(tallyLifecycle(counts, plan, [{ kind: 'conflict', status: '412', error: 'Precondition Failed' }], log)).toMatchObject({ conflicts: 0 });
  expect(counts.existed).toBe(1);
});

describe('planLifecycle (pure)', () => {
  const config: LifecycleConfig = { enabled: true, code: CODE };
  const point = (id: string, sender: string, minutesAgo: number): MessagePoint => ({
    ref: `Communication/${id}`,
    time: NOW - minutesAgo * MINUTE,
    role: sender.startsWith('Patient') ? 'patient' : sender.startsWith('Device') ? 'automated' : 'care-team',
    sender,
  });
  const header: WithId<Communication> = { resourceType: 'Communication', id: 'h', meta: { versionId: '1' }, status: 'in-progress', subject: { reference: 'Patient/p' }, recipient: [{ reference: 'Patient/p' }, { reference: 'Practitioner/r' }, { reference: 'Organization/o' }] };
  const open: WithId<Task> = { resourceType: 'Task', id: 'rt', meta: { versionId: '1' }, status: 'requested', intent: 'order', code: { coding: [CODE] }, input: [{ type: { text: 'Patient message' }, valueReference: { reference: 'Communication/p1' } }] };
  const onShift = (owner: string, name: string): OwnerFacts => ({
    owner,
    name,
    timeZone: 'UTC',
    schedules: [{ schedule: 'Schedule/s', rules: { sets: [{ availability: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], minutesOfDay: [0], durationMinutes: 1440 }], durationMinutes: 30, bufferBeforeMinutes: 0, bufferAfterMinutes: 0, alignmentMinutes: 60, serviceTypes: [] }] }, blocks: [] }],
  });
  const away = (owner: string, name: string): OwnerFacts => ({ ...onShift(owner, name), schedules: [{ ...onShift(owner, name).schedules[0], blocks: [{ slot: 'Slot/v', start: 0, end: NOW * 2 }] }] });
  const route = (facts: OwnerFacts[], coverage: Record<string, string> = {}): RouteFacts => ({ now: NOW, owner: (ref) => facts.find((f) => f.owner === ref), coverage, serviceTypes: [] });
  const thread = (points: MessagePoint[], over: Partial<LifecycleThread> = {}): LifecycleThread => ({ thread: 'Communication/h', header, tasks: [], conversation: conversation(points), ...over });
  const patchOf = (entry: { resource?: unknown }): unknown[] => JSON.parse(Buffer.from((entry.resource as { data: string }).data, 'base64').toString());

  test('open: the Task in full, a record of where it went and why, no performerType when it has an owner even with a pool set', () => {
    const plan = planLifecycle(thread([point('p1', 'Patient/p', 5)]), route([onShift('Practitioner/r', 'Dr R')]), { ...config, pool: { system: 'x', code: 'pool' } });
    expect(plan.decisions).toEqual([{ action: 'open', task: 'h:after:start', target: 'Practitioner/r', reason: 'recipient' }]);
    const task = plan.entries[0].resource as Task;
    expect(task).toEqual({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [CODE], text: 'Respond to patient message' },
      identifier: [{ system: 'urn:medplum-messaging-bots:response-episode', value: 'h:after:start' }],
      focus: { reference: 'Communication/h' },
      for: { reference: 'Patient/p' },
      authoredOn: new Date(NOW).toISOString(),
      lastModified: new Date(NOW).toISOString(),
      owner: { reference: 'Practitioner/r' },
      performerType: undefined,
      input: [{ type: { text: 'Patient message' }, valueReference: { reference: 'Communication/p1' } }],
      note: [
        {
          time: new Date(NOW).toISOString(),
          authorString: 'ooo-reroute',
          text: 'Assigned to Dr R, on this thread and on shift.',
          extension: [{ url: 'urn:medplum-messaging-bots:response-route', extension: [{ url: 'to', valueReference: { reference: 'Practitioner/r' } }, { url: 'reason', valueCode: 'recipient' }] }],
        },
      ],
    });
    expect(plan.entries[0].request).toEqual({ method: 'POST', url: 'Task', ifNoneExist: 'identifier=urn:medplum-messaging-bots:response-episode|h:after:start' });
  });

  test('the pool: a record without "to"; a cover\'s words', () => {
    const pooled = planLifecycle(thread([point('p1', 'Patient/p', 5)]), route([away('Practitioner/r', 'Dr R')]), { ...config, pool: { system: 'x', code: 'pool' } });
    const task = pooled.entries[0].resource as Task;
    expect(task.performerType).toEqual([{ coding: [{ system: 'x', code: 'pool' }] }]);
    expect(task.note?.[0].extension).toEqual([{ url: 'urn:medplum-messaging-bots:response-route', extension: [{ url: 'reason', valueCode: 'pool' }] }]);
    const covered = chooseOwner(['Practitioner/r'], undefined, route([away('Practitioner/r', 'Dr R'), onShift('Practitioner/c', 'Dr C')], { 'Practitioner/r': 'Practitioner/c' }));
    expect(covered).toEqual({ owner: 'Practitioner/c', reason: 'cover', text: 'Assigned to Dr C, covering for Dr R (away (vacation or leave on their schedule)).' });
    expect(chooseOwner(['Practitioner/u'], undefined, route([])).text).toBe('Sent to the team pool: no one on this thread is available (a care-team member is not checked).');
  });

  test('who is a candidate: the last care-team person who wrote (not a CareTeam, not a Device), then the people among the recipients', () => {
    const points = [point('a', 'Practitioner/w', 30), point('b', 'CareTeam/t', 20), point('c', 'Device/d', 10), point('p1', 'Patient/p', 5)];
    expect(lastCareTeamWriter(conversation(points))).toBe('Practitioner/w');
    expect(routeCandidates(thread(points))).toEqual(['Practitioner/w', 'Practitioner/r']);
    expect(routeCandidates(thread([point('p1', 'Patient/p', 5)], { header: { ...header, recipient: undefined } }))).toEqual([]);
  });

  test('covers are read only when no candidate is available, and only people', () => {
    const coverage = { 'Practitioner/a': 'Practitioner/c', 'Practitioner/b': 'Organization/o' };
    expect(coversToRead(['Practitioner/a', 'Practitioner/b'], route([onShift('Practitioner/a', 'A')], coverage))).toEqual([]);
    expect(coversToRead(['Practitioner/a', 'Practitioner/b'], route([away('Practitioner/a', 'A')], coverage))).toEqual(['Practitioner/c']);
  });

  test('when it opens nothing: off, a closed thread, the care team spoke last, an open response Task, no patient message yet', () => {
    const waiting = [point('p1', 'Patient/p', 5)];
    expect(opensTask(thread(waiting), config)).toBe(true);
    expect(opensTask(thread(waiting), { ...config, enabled: false })).toBe(false);
    expect(opensTask(thread(waiting, { header: { ...header, status: 'completed' } }), config)).toBe(false);
    expect(opensTask(thread([...waiting, point('r1', 'Practitioner/r', 1)]), config)).toBe(false);
    expect(opensTask(thread(waiting, { tasks: [open] }), config)).toBe(false);
    expect(opensTask(thread([]), config)).toBe(false);
    expect(planLifecycle(thread(waiting, { header: { ...header, status: 'completed' }, tasks: [open] }), route([]), { ...config, enabled: false }).entries).toEqual([]);
  });

  test('cancel and complete: their reasons, and a Task that already had an output keeps it', () => {
    const cancelled = planLifecycle(thread([], { header: { ...header, status: 'stopped' }, tasks: [open] }), route([]), config);
    expect(cancelled.decisions).toEqual([{ action: 'cancel', task: 'Task/rt', reason: 'thread stopped' }]);
    expect(planLifecycle(thread([], { header: undefined, tasks: [open] }), route([]), config).decisions).toEqual([{ action: 'cancel', task: 'Task/rt', reason: 'thread deleted' }]);
    const withOutput = { ...open, output: [{ type: { text: 'earlier' }, valueString: 'x' }] };
    const done = planLifecycle(thread([point('p1', 'Patient/p', 30), point('r1', 'Practitioner/r', 10)], { tasks: [withOutput] }), route([]), config);
    expect(done.decisions).toEqual([{ action: 'complete', task: 'Task/rt', target: 'Communication/r1', reason: 'care team replied' }]);
    expect(patchOf(done.entries[0])).toContainEqual({ op: 'add', path: '/output/-', value: { type: { text: 'Response' }, valueReference: { reference: 'Communication/r1' } } });
  });

  test('when an episode opened: its patient message, else authoredOn, else the beginning', () => {
    const c = conversation([point('p1', 'Patient/p', 30)]);
    expect(openedAt(open, c)).toBe(NOW - 30 * MINUTE);
    expect(openedAt({ ...open, input: [{ type: { text: 'x' }, valueReference: { reference: 'Patient/p' } }], authoredOn: new Date(NOW).toISOString() }, c)).toBe(NOW);
    expect(openedAt({ ...open, input: undefined }, c)).toBe(0);
  });

  test('system|code values are trimmed', () => {
    expect(parseCoding(' http://x | y ')).toEqual({ coding: { system: 'http://x', code: 'y' } });
  });
});
