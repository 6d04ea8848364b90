import type { WithId } from '@medplum/core';
import type { Binary, Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, planReroutes, triageMessage } from '../src/ooo-reroute';
import {
  botEvent,
  message,
  PHI_MARKER,
  ref,
  seedBlock,
  seedPractitioner,
  seedSchedule,
  seedOwnedThread,
  seedTask,
  seedThread,
} from './harness/fixtures';
import type { OwnedThread, Ref } from './harness/fixtures';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { createServerMock } from './harness/server-mock';
import type { ServerMock, ServerMockOptions } from './harness/server-mock';

// Friday 2026-11-27, 10:17 in New York. Providers work 09:00-17:00 local with 30-minute slots.
const NOW = '2026-11-27T15:17:00.000Z';

interface World extends OwnedThread {
  server: ServerMock;
}

async function world(options: ServerMockOptions & { away?: boolean; recipients?: Ref[]; task?: Partial<Task> } = {}): Promise<World> {
  const server = createServerMock(options);
  const seeded = await seedOwnedThread(server, options);
  server.resetCounts();
  return { server, ...seeded };
}

async function run(w: World, input?: Communication, secrets?: Record<string, string>): ReturnType<typeof handler> {
  return handler(w.server.medplum, botEvent(input ?? { ...message(w.thread, w.patient), id: 'msg-1' }, secrets));
}

useFixedTimeAndQuietConsole(NOW);

describe('which messages can trigger a reroute', () => {
  const thread = { resourceType: 'Communication', id: 't1' } as Communication;
  const patient = { reference: 'Patient/p1' };
  test.each<[string, unknown, string]>([
    ['not a Communication', { resourceType: 'Patient', id: 'p1' }, 'not a Communication'],
    ['nothing at all', undefined, 'not a Communication'],
    ['no partOf', { ...message(thread, patient), id: 'm', partOf: undefined }, 'no partOf'],
    ['partOf a Task', { ...message(thread, patient), id: 'm', partOf: [{ reference: 'Task/x' }] }, 'does not point at a Communication'],
    ['status completed', { ...message(thread, patient), id: 'm', status: 'completed' }, 'not in-progress'],
    ['no sender', { ...message(thread, patient), id: 'm', sender: undefined }, 'no sender'],
    ['a care-team sender', message(thread, { reference: 'Practitioner/x' }, { id: 'm' }), 'not the patient side'],
  ])('ignores %s', (_name, input, reason) => {
    expect(triageMessage(input)).toMatchObject({ ignore: expect.stringContaining(reason) });
  });

  test('a message without subject is still a patient message in its thread (the thread is what matters)', () => {
    expect(triageMessage(message(thread, patient, { id: 'm', subject: undefined }))).toEqual({
      message: 'Communication/m',
      thread: 'Communication/t1',
    });
  });

  test('accepts a RelatedPerson writing for the patient', () => {
    expect(triageMessage(message(thread, { reference: 'RelatedPerson/r' }, { id: 'm' }))).toEqual({
      message: 'Communication/m',
      thread: 'Communication/t1',
    });
  });

  test("the owner's own message changes nothing and makes no request", async () => {
    const w = await world({ away: true });
    const summary = await run(w, { ...message(w.thread, ref(w.owner)), id: 'm2' });
    expect(summary.outcome).toBe('ignored');
    expect(w.server.count()).toBe(0);
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toEqual(ref(w.owner));
  });
});

describe('owner available', () => {
  test('a provider on duty at 10:17 keeps the Task, in 2 requests', async () => {
    const w = await world();
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', tasksExamined: 1, rerouted: 0, kept: 1 });
    expect(summary.decisions[0].reason).toContain('available');
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.meta?.versionId).toBe(w.task.meta?.versionId);
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Schedule/:id/$find': 1 });
    expect(w.server.count()).toBeLessThanOrEqual(3);
  });

  test('the $find response wrapped in Parameters is read too', async () => {
    const w = await world({ find: 'parameters' });
    expect((await run(w)).kept).toBe(1);
  });

  test('a provider on an evening shift in New York is available at 20:30 local (server UTC-day quirk)', async () => {
    vi.setSystemTime(new Date('2026-11-28T01:30:00.000Z')); // Friday 20:30 in New York
    const w = await world();
    await w.server.update({ ...w.schedule, extension: (await seedSchedule(w.server, [ref(w.owner)], { availability: [{ from: '12:00:00', hours: 10 }] })).extension });
    expect((await run(w)).kept).toBe(1);
  });

  test('a slot grid of 15 minutes aligned every 15 minutes', async () => {
    const w = await world();
    await w.server.update({
      ...w.schedule,
      extension: (await seedSchedule(w.server, [ref(w.owner)], { durationMinutes: 15, alignmentMinutes: 15 })).extension,
    });
    expect((await run(w)).kept).toBe(1);
  });
});

describe('owner unavailable', () => {
  test('vacation block: the Task returns to the pool with one note, in at most 4 requests', async () => {
    const w = await world({ away: true });
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 1, kept: 0 });
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.owner).toBeUndefined();
    expect(task.status).toBe('requested');
    expect(task.performerType).toEqual(w.task.performerType);
    expect(task.priority).toBe('routine');
    expect(task.authoredOn).toBe(w.task.authoredOn);
    expect(task.note).toHaveLength(1);
    expect(task.note?.[0].text).toContain(`owner Practitioner/${w.owner.id} unavailable`);
    expect(task.note?.[0].text).toContain('Communication/msg-1');
    expect(task.note?.[0].text).not.toContain(PHI_MARKER);
    const header = await w.server.read<Communication>('Communication', w.thread.id);
    expect(header.recipient).toEqual([w.patient]);
    expect(w.server.count()).toBeLessThanOrEqual(4);
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Schedule/:id/$find': 1, 'POST batch': 1 });
  });

  test('no availability defined today (Friday) counts as unavailable', async () => {
    const w = await world();
    await w.server.update({
      ...w.schedule,
      extension: (await seedSchedule(w.server, [ref(w.owner)], { availability: [{ days: ['mon', 'tue', 'wed', 'thu'] }] })).extension,
    });
    expect((await run(w)).rerouted).toBe(1);
  });

  test('outside working hours (07:00 local) counts as unavailable', async () => {
    vi.setSystemTime(new Date('2026-11-27T12:00:00.000Z'));
    const w = await world();
    expect((await run(w)).rerouted).toBe(1);
  });

  test('a Schedule without scheduling parameters counts as unavailable', async () => {
    const w = await world();
    await w.server.update({ ...w.schedule, extension: undefined });
    expect((await run(w)).rerouted).toBe(1);
  });

  test('every open Task of the owner on the thread moves; closed Tasks and other threads do not', async () => {
    const w = await world({ away: true, task: { note: [{ text: 'earlier note' }] } });
    const second = await seedTask(w.server, w.thread, { owner: ref(w.owner), status: 'on-hold' });
    const done = await seedTask(w.server, w.thread, { owner: ref(w.owner), status: 'completed' });
    const otherThread = await seedThread(w.server);
    const other = await seedTask(w.server, otherThread, { owner: ref(w.owner) });
    const summary = await run(w);
    expect(summary.rerouted).toBe(2);
    const first = await w.server.read<Task>('Task', w.task.id);
    expect(first.note?.map((n) => n.text?.slice(0, 12))).toEqual(['earlier note', 'Out-of-offic']);
    expect((await w.server.read<Task>('Task', second.id)).owner).toBeUndefined();
    for (const untouched of [done, other]) {
      expect((await w.server.read<Task>('Task', untouched.id)).meta?.versionId).toBe(untouched.meta?.versionId);
    }
  });

  test('a header without recipients is left alone; other recipients are kept', async () => {
    const w = await world({ away: true, recipients: [] });
    await w.server.update({ ...w.thread, recipient: undefined });
    await run(w);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toBeUndefined();

    const w2 = await world({ away: true });
    const colleague = ref(await seedPractitioner(w2.server));
    await w2.server.update({ ...w2.thread, recipient: [w2.patient, ref(w2.owner), colleague] });
    await run(w2);
    expect((await w2.server.read<Communication>('Communication', w2.thread.id)).recipient).toEqual([w2.patient, colleague]);
  });

  test('a PractitionerRole owner with its own Schedule is rerouted too', async () => {
    const w = await world();
    const role = await w.server.seed({ resourceType: 'PractitionerRole', practitioner: ref(w.owner), extension: w.owner.extension });
    const roleSchedule = await seedSchedule(w.server, [ref(role)]);
    await seedBlock(w.server, roleSchedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    await w.server.update({ ...w.task, owner: ref(role) });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ owner: `PractitionerRole/${role.id}`, action: 'to-pool' });
  });
});

describe('coverage', () => {
  test('an available covering provider takes the Task and joins the thread', async () => {
    const w = await world({ away: true });
    const cover = await seedPractitioner(w.server);
    await seedSchedule(w.server, [ref(cover)]);
    const summary = await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(summary.decisions[0]).toMatchObject({ action: 'to-cover', cover: `Practitioner/${cover.id}` });
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.owner).toEqual(ref(cover));
    expect(task.status).toBe('requested');
    expect(task.note?.[0].text).toContain(`reassigned to Practitioner/${cover.id}`);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toEqual([w.patient, ref(cover)]);
  });

  test('an unavailable covering provider means the pool', async () => {
    const w = await world({ away: true });
    const cover = await seedPractitioner(w.server);
    const coverSchedule = await seedSchedule(w.server, [ref(cover)]);
    await seedBlock(w.server, coverSchedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    const summary = await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(summary.decisions[0].action).toBe('to-pool');
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toBeUndefined();
  });

  test('malformed secrets fall back to defaults with a warning', async () => {
    const w = await world({ away: true });
    const summary = await run(w, undefined, { OOO_COVERAGE: '{not json', OOO_WINDOW_MINUTES: 'soon' });
    expect(summary.decisions[0].action).toBe('to-pool');
    const warnings = vi.mocked(console.log).mock.calls.map((c) => String(c[0]));
    expect(warnings.filter((w) => w.includes('OOO_COVERAGE'))).toHaveLength(1);
    expect(warnings.filter((w) => w.includes('OOO_WINDOW_MINUTES'))).toHaveLength(1);
  });
});

describe('when availability cannot be read', () => {
  test('no Schedule at all: the Task stays and the reason is logged', async () => {
    const w = await world({ away: true });
    await w.server.update({ ...w.schedule, actor: [{ reference: 'Practitioner/someone-else' }] });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: expect.stringContaining('no-active-schedule') });
  });

  test('an inactive Schedule is not a Schedule', async () => {
    const w = await world({ away: true });
    await w.server.update({ ...w.schedule, active: false });
    expect((await run(w)).kept).toBe(1);
  });

  test.each([
    ['$find absent (404)', { find: 'absent' as const }, undefined],
    ['actor without time zone (400)', {}, null],
  ])('%s: falls back to busy-unavailable Slots covering now', async (_name, options, timeZone) => {
    const away = await world({ ...options, away: true });
    const present = await world(options);
    for (const w of [away, present]) {
      if (timeZone === null) {
        await w.server.update({ ...w.owner, extension: undefined });
      }
    }
    expect((await run(away)).rerouted).toBe(1);
    expect(away.server.countByKey()).toMatchObject({ 'GET Slot': 1 });
    expect((await run(present)).kept).toBe(1);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('falling back'))).toBe(true);
  });

  test('a Task owned by an Organization is not rerouted', async () => {
    const w = await world({ away: true });
    const org = await w.server.seed({ resourceType: 'Organization', name: 'Clinic' });
    await w.server.update({ ...w.task, owner: ref(org) });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: expect.stringContaining('Organization') });
  });
});

describe('concurrency and faults', () => {
  test('the same message delivered twice gives one reroute and one note', async () => {
    const w = await world({ away: true });
    await run(w);
    const second = await run(w);
    expect(second.rerouted).toBe(0);
    expect(second.decisions[0].reason).toBe('already rerouted for this message');
    expect((await w.server.read<Task>('Task', w.task.id)).note).toHaveLength(1);
  });

  test('two messages at once give one reroute and one note', async () => {
    const w = await world({ away: true });
    const results = await Promise.all([
      run(w, { ...message(w.thread, w.patient), id: 'a' }),
      run(w, { ...message(w.thread, w.patient), id: 'b' }),
    ]);
    expect(results.reduce((n, r) => n + r.rerouted, 0)).toBe(1);
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.note).toHaveLength(1);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toEqual([w.patient]);
  });

  test('a concurrent edit is kept: the bot reads again and decides again once', async () => {
    const w = await world({ away: true });
    let edited = false;
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch' && !edited) {
        edited = true;
        const current = await w.server.read<Task>('Task', w.task.id);
        await w.server.update({ ...current, priority: 'urgent' });
      }
    };
    const summary = await run(w);
    expect(summary.rerouted).toBe(1);
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task).toMatchObject({ priority: 'urgent', status: 'requested' });
    expect(task.owner).toBeUndefined();
    expect(task.note).toHaveLength(1);
    expect(w.server.countByKey()['GET Task']).toBe(2);
  });

  test('a colleague claiming the Task meanwhile wins', async () => {
    const w = await world({ away: true });
    const colleague = await seedPractitioner(w.server);
    await seedSchedule(w.server, [ref(colleague)]);
    let claimed = false;
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch' && !claimed) {
        claimed = true;
        await w.server.update({ ...(await w.server.read<Task>('Task', w.task.id)), owner: ref(colleague) });
      }
    };
    const summary = await run(w);
    expect(summary.rerouted).toBe(0);
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toEqual(ref(colleague));
  });

  test('a persistent 503 on the write fails the run with nothing half-done; redelivery completes it', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^POST $/, status: 503, times: 3 });
    await expect(run(w)).rejects.toThrow('write(s) failed');
    const untouched = await w.server.read<Task>('Task', w.task.id);
    expect(untouched.meta?.versionId).toBe(w.task.meta?.versionId);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toHaveLength(2);

    const redelivery = await run(w);
    expect(redelivery.rerouted).toBe(1);
    expect((await w.server.read<Task>('Task', w.task.id)).note).toHaveLength(1);
  });

  test('a deadline reached before the write: nothing written, the run fails, a redelivery completes it', async () => {
    const w = await world({ away: true });
    w.server.beforeRequest = (r) => {
      if (r.key === 'GET Schedule/:id/$find') {
        vi.setSystemTime(new Date(Date.now() + 9_000)); // $find took 9 s of a 10 s timeout
      }
    };
    await expect(run(w)).rejects.toThrow('deadline near');
    expect((await w.server.read<Task>('Task', w.task.id)).meta?.versionId).toBe(w.task.meta?.versionId);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('2 write(s) not started'))).toBe(true);
    w.server.beforeRequest = undefined;
    expect((await run(w)).rerouted).toBe(1);
  });

  test('a 503 on $find keeps the Task (availability unknown)', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /\$find$/, status: 503, times: Infinity });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: expect.stringContaining('unknown') });
  });
});

describe('bad input: a clear logged outcome, never a corrupted resource', () => {
  test.each<[string, (w: World) => Promise<void>, string, boolean]>([
    ['a Task owned by a Group', async (w) => {
      const group = await w.server.seed({ resourceType: 'Group', type: 'practitioner', actual: true });
      await w.server.update({ ...w.task, owner: ref(group) });
    }, 'owner type Group is not rerouted', false],
    ['a Schedule with several actors ($find 400)', async (w) => {
      const other = await seedPractitioner(w.server);
      await w.server.update({ ...w.schedule, actor: [ref(w.owner), ref(other)] });
    }, 'blocked:Slot/', true],
    ['a Schedule whose actor has no time zone ($find 400)', async (w) => {
      await w.server.update({ ...w.owner, extension: undefined });
    }, 'blocked:Slot/', true],
    ['a thread header that was deleted (Tasks still point at it)', async (w) => {
      await w.server.medplum.deleteResource('Communication', w.thread.id);
    }, 'no-free-slot', true],
  ])('%s', async (_name, change, reason, rerouted) => {
    const w = await world({ away: true });
    await change(w);
    w.server.resetCounts();
    const summary = await run(w);
    expect(summary.outcome).toBe('done');
    expect(summary.decisions[0].reason).toContain(reason);
    const task = await w.server.read<Task>('Task', w.task.id);
    if (rerouted) {
      expect(task).toMatchObject({ status: 'requested', note: [expect.objectContaining({ authorString: 'ooo-reroute' })] });
      expect(task.owner).toBeUndefined();
    } else {
      expect(task.note).toBeUndefined();
    }
    const logged = vi.mocked(console.log).mock.calls.map((c) => String(c[0]));
    expect(logged.some((line) => line.includes(`Task/${w.task.id}`))).toBe(true);
  });

  test('a thread header that does not exist and has no Tasks: nothing to do', async () => {
    const w = await world({ away: true });
    const summary = await run(w, { ...message({ resourceType: 'Communication', id: 'missing', status: 'in-progress' }, w.patient), id: 'm9' });
    expect(summary).toMatchObject({ outcome: 'done', tasksExamined: 0, rerouted: 0 });
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1 });
  });
});

describe('planReroutes (pure)', () => {
  const task: WithId<Task> = {
    resourceType: 'Task',
    id: 't',
    meta: { versionId: 'v1' },
    status: 'accepted',
    intent: 'order',
    owner: { reference: 'Practitioner/a' },
  };
  const facts = {
    now: NOW,
    message: 'Communication/m',
    thread: 'Communication/h',
    tasks: [task],
    availability: new Map([['Practitioner/a', { state: 'unavailable' as const, reason: 'no-free-slot:Schedule/s' }]]),
    cover: new Map<string, string>(),
  };

  test('creates note when absent and guards the version and the owner', () => {
    const plan = planReroutes(facts);
    const patch = JSON.parse(Buffer.from((plan.entries[0].resource as Binary).data as string, 'base64').toString());
    expect(patch).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'v1' },
      { op: 'test', path: '/owner', value: { reference: 'Practitioner/a' } },
      { op: 'remove', path: '/owner' },
      { op: 'replace', path: '/status', value: 'requested' },
      { op: 'add', path: '/note', value: [expect.objectContaining({ time: NOW })] },
      { op: 'add', path: '/lastModified', value: NOW },
    ]);
  });

  test('unknown availability changes nothing', () => {
    const plan = planReroutes({ ...facts, availability: new Map([['Practitioner/a', { state: 'unknown' as const, reason: 'x' }]]) });
    expect(plan.entries).toHaveLength(0);
    expect(plan.decisions[0].action).toBe('kept');
  });
});
