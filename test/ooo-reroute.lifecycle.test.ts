// The response-Task lifecycle (RESPONSE_TASKS=on): open a Task when a patient writes, route it,
// complete it when the care team answers, cancel it when the thread closes; the sweep reconciles.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { chooseOwner, parseCoding } from '../src/lib/response-lifecycle';
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
