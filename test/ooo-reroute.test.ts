import type { WithId } from '@medplum/core';
import type { Binary, Communication, Slot, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, isSweepInput, triageMessage } from '../src/ooo-reroute';
import { RunFailedError } from '../src/lib/bot-runtime';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { latestReroute, ownersToCheck, planThread } from '../src/lib/reroute-plan';
import type { OwnerAvailability } from '../src/lib/owner-availability';
import {
  botEvent,
  message,
  PHI_MARKER,
  SCHEDULING_PARAMETERS_URL,
  TIMEZONE_URL,
  ref,
  seedBlock,
  seedPractitioner,
  seedSchedule,
  seedOwnedThread,
  seedTask,
  seedThread,
} from './harness/fixtures';
import type { OwnedThread, Ref, ScheduleOptions } from './harness/fixtures';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { createServerMock } from './harness/server-mock';
import type { ServerMock, ServerMockOptions } from './harness/server-mock';

// Friday 2026-11-27, 10:17 in New York. Providers work 09:00-17:00 local with 30-minute slots.
const NOW = '2026-11-27T15:17:00.000Z';

interface World extends OwnedThread {
  server: ServerMock;
}

async function world(options: ServerMockOptions & { away?: boolean; recipients?: Ref[]; task?: Partial<Task>; schedule?: ScheduleOptions } = {}): Promise<World> {
  const server = createServerMock(options);
  const seeded = await seedOwnedThread(server, options);
  // The patient's message that fires the Subscription is in the store, as on the server.
  await server.seed({ ...message(seeded.thread, seeded.patient), id: 'msg-1', sent: new Date(Date.now() - 60_000).toISOString() });
  server.resetCounts();
  return { server, ...seeded };
}

async function run(w: World, input?: Communication, secrets?: Record<string, string>): Promise<RerouteSummary> {
  return (await handler(w.server.medplum, botEvent(input ?? { ...message(w.thread, w.patient), id: 'msg-1' }, secrets))) as RerouteSummary;
}

async function sweep(w: { server: ServerMock }, secrets: Record<string, string> = {}): Promise<SweepSummary> {
  return (await handler(w.server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' }, { BOT_TIMEOUT_SECONDS: '60', ...secrets }))) as SweepSummary;
}

useFixedTimeAndQuietConsole(NOW);

describe('which messages can trigger a reroute', () => {
  const thread = { resourceType: 'Communication', id: 't1' } as Communication;
  const patient = { reference: 'Patient/p1' };
  test.each<[string, unknown, string]>([
    ['not a Communication', { resourceType: 'Patient', id: 'p1' }, 'input is Patient, not a Communication'],
    ['a string', 'hello', 'input is string, not a Communication'],
    ['no partOf', { ...message(thread, patient), id: 'm', partOf: undefined }, 'no partOf'],
    ['partOf a Task', { ...message(thread, patient), id: 'm', partOf: [{ reference: 'Task/x' }] }, 'does not point at a Communication'],
    ['status completed', { ...message(thread, patient), id: 'm', status: 'completed' }, 'not in-progress'],
    ['no sender', { ...message(thread, patient), id: 'm', sender: undefined }, 'sender is missing'],
    ['a care-team sender', message(thread, { reference: 'Practitioner/x' }, { id: 'm' }), 'sender is Practitioner (care-team), not the patient side'],
    ['an auto-acknowledgement by a Device', message(thread, { reference: 'Device/x' }, { id: 'm' }), 'sender is Device (automated)'],
    ['a message from a Bot', message(thread, { reference: 'Bot/x' }, { id: 'm' }), 'sender is Bot (automated)'],
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
  test('vacation block: the Task returns to the pool with one note, in 4 requests', async () => {
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
    expect(task.note?.[0].text).toContain('(blocked:Slot/');
    // The Slot search says why $find found nothing: a vacation block, not an appointment.
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Schedule/:id/$find': 1, 'GET Slot': 1, 'POST batch': 1 });
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
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('deciding from its rules and Slots'))).toBe(true);
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

  test('a persistent 503 on the write fails the run with nothing half-done; the sweep completes it', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^POST $/, status: 503, times: 3 });
    await expect(run(w)).rejects.toThrow('write(s) failed');
    const untouched = await w.server.read<Task>('Task', w.task.id);
    expect(untouched.meta?.versionId).toBe(w.task.meta?.versionId);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toHaveLength(2);

    expect(await sweep(w)).toMatchObject({ rerouted: 1, repaired: 0, failed: 0 });
    expect((await w.server.read<Task>('Task', w.task.id)).note).toHaveLength(1);
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toEqual([w.patient]);
  });

  test('a deadline reached before the write: nothing written, the run says so, the sweep completes it', async () => {
    const w = await world({ away: true });
    w.server.beforeRequest = (r) => {
      if (r.key === 'GET Schedule/:id/$find') {
        vi.setSystemTime(new Date(Date.now() + 9_000)); // $find took 9 s of a 10 s timeout
      }
    };
    expect(await run(w)).toMatchObject({ outcome: 'deferred', rerouted: 0, deferred: { quota: 0, deadline: 1 } });
    expect((await w.server.read<Task>('Task', w.task.id)).meta?.versionId).toBe(w.task.meta?.versionId);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('the sweep finishes what is left'))).toBe(true);
    w.server.beforeRequest = undefined;
    expect(await sweep(w)).toMatchObject({ rerouted: 1, failed: 0 });
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toBeUndefined();
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
    }, 'blocked:Slot/', true],
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

describe('real clinic schedules', () => {
  const everyDay = (from: string, hours: number) => ({ availability: [{ from, hours }] });

  test('an overnight shift: on duty at 01:40 local in Anguilla, the shift having begun at 20:00 the day before', async () => {
    vi.setSystemTime(new Date('2026-11-28T05:40:00.000Z'));
    const w = await world({ schedule: everyDay('20:00:00', 8) });
    await w.server.update({ ...w.owner, extension: [{ url: TIMEZONE_URL, valueCode: 'America/Anguilla' }] });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (free-slot)' });
  });

  test('a long overnight shift whose earlier slots fill the $find page: decided from the rules', async () => {
    vi.setSystemTime(new Date('2026-11-28T05:00:00.000Z')); // 00:00 in New York; the shift began at 13:00
    const w = await world({ schedule: { ...everyDay('13:00:00', 14), durationMinutes: 15, alignmentMinutes: 15 } });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (working-hours)' });
  });

  test('seeing patients all hour is being in the office: kept, "booked"', async () => {
    const w = await world();
    await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'busy', start: '2026-11-27T14:00:00Z', end: '2026-11-27T17:00:00Z' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (booked)' });
  });

  test('an appointment outside working hours does not make the owner present', async () => {
    vi.setSystemTime(new Date('2026-11-27T12:30:00.000Z')); // 07:30 local, hours 09:00-17:00
    const w = await world();
    await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'busy', start: '2026-11-27T12:00:00Z', end: '2026-11-27T13:00:00Z' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool' });
  });

  test('a time zone that is not an IANA code: logged, availability unknown, Task kept, no request to $find', async () => {
    const w = await world({ away: true });
    await w.server.update({ ...w.owner, extension: [{ url: TIMEZONE_URL, valueCode: 'Eastern' }] });
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0 });
    expect(summary.decisions[0].reason).toBe('owner unknown (invalid-time-zone)');
    expect(w.server.countByKey()['GET Schedule/:id/$find']).toBeUndefined();
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('not an IANA zone'))).toBe(true);
  });

  test('a held Task keeps its hold: owner removed, status on-hold, the note says so', async () => {
    const w = await world({ away: true, task: { status: 'on-hold' } });
    expect((await run(w)).rerouted).toBe(1);
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task).toMatchObject({ status: 'on-hold' });
    expect(task.owner).toBeUndefined();
    expect(task.note?.[0].text).toContain('status on-hold kept');
  });

  test('the header changed between the read and the write: the retry still removes the away owner, keeping the change', async () => {
    const w = await world({ away: true });
    const colleague = ref(await seedPractitioner(w.server));
    let changed = false;
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch' && !changed) {
        changed = true;
        const header = await w.server.read<Communication>('Communication', w.thread.id);
        await w.server.update({ ...header, recipient: [...(header.recipient ?? []), colleague] });
      }
    };
    const summary = await run(w);
    expect(summary).toMatchObject({ rerouted: 1, repaired: 1, conflicts: 0 });
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toEqual([w.patient, colleague]);
    expect((await w.server.read<Task>('Task', w.task.id)).note).toHaveLength(1);
  });

  test('a message whose thread header does not exist: the log says so', async () => {
    const w = await world({ away: true });
    const summary = await run(w, { ...message({ resourceType: 'Communication', id: 'gone', status: 'in-progress' }, w.patient), id: 'm9' });
    expect(summary).toMatchObject({ outcome: 'done', tasksExamined: 0 });
    const logged = vi.mocked(console.log).mock.calls.map((c) => String(c[0]));
    expect(logged).toContain('[ooo-reroute] Communication/gone: no open Tasks on the thread; nothing to reroute');

    await w.server.medplum.deleteResource('Communication', w.thread.id);
    await run(w);
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain(
      `[ooo-reroute] Communication/${w.thread.id}: thread header not found (deleted, or not readable by the bot); Tasks decided without it`
    );
  });

  test('service types: a Schedule whose rules are all tied to a service type is read for any of them', async () => {
    const w = await world();
    const params = w.schedule.extension?.[0].extension ?? [];
    await w.server.update({
      ...w.schedule,
      extension: [{ url: SCHEDULING_PARAMETERS_URL, extension: [...params, { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code: 'video' } }] }],
    });
    expect((await run(w)).decisions[0].reason).toBe('owner available (free-slot)');
    expect(w.server.requests.find((r) => r.key.endsWith('$find'))?.url).toContain('service-type=http');
    // OOO_SERVICE_TYPE asks for one service; the owner offers no other hours: away for it.
    const phone = await run(w, undefined, { OOO_SERVICE_TYPE: 'http://example.com/st|phone' });
    expect(phone.decisions[0]).toMatchObject({ action: 'to-pool' });
  });
});

describe('planThread (pure)', () => {
  const task: WithId<Task> = {
    resourceType: 'Task',
    id: 't',
    meta: { versionId: 'v1' },
    status: 'accepted',
    intent: 'order',
    owner: { reference: 'Practitioner/a' },
  };
  const header: WithId<Communication> = {
    resourceType: 'Communication',
    id: 'h',
    meta: { versionId: 'h1' },
    status: 'in-progress',
    recipient: [{ reference: 'Patient/p' }, { reference: 'Practitioner/a' }],
  };
  const owners = {
    now: NOW,
    availability: new Map<string, OwnerAvailability>([['Practitioner/a', { state: 'unavailable', reason: 'blocked:Slot/s' }]]),
    cover: new Map<string, string>(),
  };
  const thread = { thread: 'Communication/h', header, tasks: [task], trigger: 'Communication/m', waitingOnCareTeam: true };
  const patchOf = (entry: { resource?: unknown }): unknown[] => JSON.parse(Buffer.from((entry.resource as Binary).data as string, 'base64').toString());
  const record = (from: string, extra: { to?: string; trigger?: string } = {}) => ({
    authorString: 'ooo-reroute',
    text: 'earlier',
    extension: [
      {
        url: 'urn:medplum-messaging-bots:ooo-reroute',
        extension: [
          { url: 'from', valueReference: { reference: from } },
          ...(extra.to ? [{ url: 'to', valueReference: { reference: extra.to } }] : []),
          ...(extra.trigger ? [{ url: 'trigger', valueReference: { reference: extra.trigger } }] : []),
        ],
      },
    ],
  });

  // A note written before the record extension existed: read from its text.
  const legacyToCover = {
    authorString: 'ooo-reroute',
    text: `Out-of-office reroute: owner Practitioner/a unavailable at ${NOW} (x); triggered by Communication/m0; reassigned to Practitioner/c.`,
  };

  test('guards the version and the owner, removes the owner, sets requested, adds a note with the reroute record', () => {
    const plan = planThread(thread, owners);
    expect(patchOf(plan.entries[0])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'v1' },
      { op: 'test', path: '/owner', value: { reference: 'Practitioner/a' } },
      { op: 'remove', path: '/owner' },
      { op: 'replace', path: '/status', value: 'requested' },
      {
        op: 'add',
        path: '/note',
        value: [
          {
            time: NOW,
            authorString: 'ooo-reroute',
            text: `Out-of-office reroute: owner Practitioner/a unavailable at ${NOW} (blocked:Slot/s); triggered by Communication/m; returned to the pool.`,
            extension: [
              {
                url: 'urn:medplum-messaging-bots:ooo-reroute',
                extension: [
                  { url: 'from', valueReference: { reference: 'Practitioner/a' } },
                  { url: 'trigger', valueReference: { reference: 'Communication/m' } },
                ],
              },
            ],
          },
        ],
      },
      { op: 'add', path: '/lastModified', value: NOW },
    ]);
    expect(patchOf(plan.entries[1])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'h1' },
      { op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }] },
    ]);
  });

  test.each(['on-hold', 'draft'] as const)('a %s Task keeps its status: the owner goes, the hold stays, the note says so', (status) => {
    const plan = planThread({ ...thread, tasks: [{ ...task, status, note: [{ text: 'waiting on labs' }] }] }, owners);
    const patch = patchOf(plan.entries[0]) as { op: string; path: string; value?: { text?: string } }[];
    expect(patch.map((op) => `${op.op} ${op.path}`)).toEqual(['test /meta/versionId', 'test /owner', 'remove /owner', 'add /note/-', 'add /lastModified']);
    expect(patch[3].value?.text).toContain(`returned to the pool; status ${status} kept.`);
  });

  test('to a cover: the owner is replaced and the cover joins the recipients', () => {
    const plan = planThread(thread, { ...owners, cover: new Map([['Practitioner/a', 'Practitioner/c']]) });
    expect(plan.decisions).toEqual([{ task: 'Task/t', owner: 'Practitioner/a', action: 'to-cover', reason: 'blocked:Slot/s', cover: 'Practitioner/c' }]);
    expect(patchOf(plan.entries[0])).toContainEqual({ op: 'replace', path: '/owner', value: { reference: 'Practitioner/c' } });
    expect(patchOf(plan.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
  });

  test('unknown availability, an available owner, or the care team speaking last change nothing', () => {
    for (const state of ['unknown', 'available'] as const) {
      const plan = planThread(thread, { ...owners, availability: new Map([['Practitioner/a', { state, reason: 'x' }]]) });
      expect(plan.entries).toHaveLength(0);
      expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason: `owner ${state} (x)` });
    }
    const answered = planThread({ ...thread, waitingOnCareTeam: false }, owners);
    expect(answered.entries).toHaveLength(0);
    expect(answered.decisions[0].reason).toBe('owner unavailable, but the care team spoke last');
  });

  test('a half-done reroute (Task moved, header still listing the owner) is finished: header only, no second note', () => {
    const moved = { ...task, owner: undefined, status: 'requested' as const, note: [record('Practitioner/a', { trigger: 'Communication/m0' })] };
    const plan = planThread({ ...thread, tasks: [moved], trigger: 'Communication/m1' }, owners);
    expect(plan.repaired).toEqual(['Practitioner/a']);
    expect(plan.entries).toHaveLength(1);
    expect(patchOf(plan.entries[0])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }] });
    expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason: 'no owner (already in the pool)' });
  });

  test('a half-done reroute to a cover adds the cover too; notes of older versions are read from their text', () => {
    const plan = planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/c' }, note: [legacyToCover] }] }, {
      ...owners,
      availability: new Map([...owners.availability, ['Practitioner/c', { state: 'available' as const, reason: 'free-slot' }]]),
    });
    expect(plan.repaired).toEqual(['Practitioner/a']);
    expect(patchOf(plan.entries[0])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
  });

  test('no repair while the earlier owner is back, still owns another open Task, or is not listed any more', () => {
    const moved = { ...task, id: 't2', owner: undefined, note: [record('Practitioner/a')] };
    const back = planThread({ ...thread, tasks: [moved] }, { ...owners, availability: new Map([['Practitioner/a', { state: 'available' as const, reason: 'free-slot' }]]) });
    expect(back.entries).toHaveLength(0);
    const stillOwning = planThread({ ...thread, tasks: [moved, { ...task, status: 'accepted' }], waitingOnCareTeam: false }, owners);
    expect(stillOwning.entries).toHaveLength(0);
    const notListed = planThread({ ...thread, header: { ...header, recipient: [{ reference: 'Patient/p' }] }, tasks: [moved] }, owners);
    expect(notListed.entries).toHaveLength(0);
  });

  test("the latest reroute record: the bot's last note, from its record, else from its text; nothing without a from", () => {
    expect(latestReroute({ ...task, note: [record('Practitioner/x', { to: 'Practitioner/c', trigger: 'Communication/m0' }), { authorString: 'nurse', text: 'owner Practitioner/z unavailable' }] })).toEqual({
      from: 'Practitioner/x',
      to: 'Practitioner/c',
      trigger: 'Communication/m0',
    });
    expect(latestReroute({ ...task, note: [record('Practitioner/x'), record('Practitioner/y', { trigger: 'Communication/m2' })] })).toEqual({ from: 'Practitioner/y', to: undefined, trigger: 'Communication/m2' });
    const withoutFrom = { authorString: 'ooo-reroute', text: 'owner Practitioner/t unavailable', extension: [{ url: 'urn:medplum-messaging-bots:ooo-reroute', extension: [{ url: 'to', valueReference: { reference: 'Practitioner/c' } }] }] };
    expect(latestReroute({ ...task, note: [withoutFrom] })).toBeUndefined();
    const legacyToPool = { authorString: 'ooo-reroute', text: `Out-of-office reroute: owner Practitioner/a unavailable at ${NOW} (x); triggered by Communication/m0; returned to the pool.` };
    expect(latestReroute({ ...task, note: [legacyToPool] })).toEqual({ from: 'Practitioner/a', to: undefined, trigger: 'Communication/m0' });
    expect(latestReroute({ ...task, note: [{ authorString: 'ooo-reroute', text: 'something else' }] })).toBeUndefined();
    expect(latestReroute(task)).toBeUndefined();
  });

  test('the header: the owner as its only recipient leaves none; a header without recipients gets the cover added', () => {
    const alone = planThread({ ...thread, header: { ...header, recipient: [{ reference: 'Practitioner/a' }] } }, owners);
    expect(patchOf(alone.entries[1])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'h1' },
      { op: 'remove', path: '/recipient' },
    ]);
    const covered = { ...owners, cover: new Map([['Practitioner/a', 'Practitioner/c']]) };
    const bare = planThread({ ...thread, header: { ...header, recipient: undefined } }, covered);
    expect(patchOf(bare.entries[1])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'h1' },
      { op: 'add', path: '/recipient', value: [{ reference: 'Practitioner/c' }] },
    ]);
    // A recipient without a reference (a display only) is kept as it is.
    const display = planThread({ ...thread, header: { ...header, recipient: [{ display: 'front desk' }, { reference: 'Practitioner/a' }] } }, owners);
    expect(patchOf(display.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ display: 'front desk' }] });
  });

  test('to a cover: the record names the cover; a cover already listed on the header is not listed twice', () => {
    const covered = { ...owners, cover: new Map([['Practitioner/a', 'Practitioner/c']]) };
    const plan = planThread(thread, covered);
    const noteOp = patchOf(plan.entries[0]).find((op) => (op as { path: string }).path.startsWith('/note')) as { value: { extension: unknown }[] | { extension: unknown } };
    const note = Array.isArray(noteOp.value) ? noteOp.value[0] : noteOp.value;
    expect(note.extension).toEqual([
      {
        url: 'urn:medplum-messaging-bots:ooo-reroute',
        extension: [
          { url: 'from', valueReference: { reference: 'Practitioner/a' } },
          { url: 'to', valueReference: { reference: 'Practitioner/c' } },
          { url: 'trigger', valueReference: { reference: 'Communication/m' } },
        ],
      },
    ]);
    const listed = planThread({ ...thread, header: { ...header, recipient: [...(header.recipient ?? []), { reference: 'Practitioner/c' }] } }, covered);
    expect(patchOf(listed.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
  });

  test('a repair adds the cover only while the cover still holds the Task; an owner not checked is kept, saying so', () => {
    const takenOver = planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/d' }, note: [legacyToCover] }] }, {
      ...owners,
      availability: new Map([...owners.availability, ['Practitioner/d', { state: 'available' as const, reason: 'free-slot' }]]),
    });
    expect(takenOver.repaired).toEqual(['Practitioner/a']);
    expect(patchOf(takenOver.entries[0])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }] });
    const unchecked = planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/u' } }] }, owners);
    expect(unchecked.decisions).toEqual([{ task: 'Task/t', owner: 'Practitioner/u', action: 'kept', reason: 'owner unknown (not-checked)' }]);
  });

  test('owners to check: the current owners this bot reroutes, and earlier rerouted owners still on the header, once each', () => {
    const earlier = { ...task, id: 't2', owner: undefined, note: [record('Practitioner/e')] };
    const gone = { ...task, id: 't3', owner: undefined, note: [record('Practitioner/g')] };
    const byOrg = { ...task, id: 't4', owner: { reference: 'Organization/o' } };
    const twice = { ...task, id: 't5' };
    const listed = { ...header, recipient: [{ reference: 'Practitioner/a' }, { reference: 'Practitioner/e' }] };
    expect(ownersToCheck({ ...thread, header: listed, tasks: [task, earlier, gone, byOrg, twice] })).toEqual(['Practitioner/a', 'Practitioner/e']);
    expect(ownersToCheck({ ...thread, header: undefined, tasks: [earlier] })).toEqual([]);
  });

  test('the same message again: "already rerouted for this message"', () => {
    const moved = { ...task, owner: undefined, note: [record('Practitioner/a', { trigger: 'Communication/m' })] };
    const plan = planThread({ ...thread, header: { ...header, recipient: [{ reference: 'Patient/p' }] }, tasks: [moved] }, owners);
    expect(plan.decisions[0].reason).toBe('already rerouted for this message');
    expect(plan.entries).toHaveLength(0);
  });
});

describe('what a run says', () => {
  const logLines = (): string[] => vi.mocked(console.log).mock.calls.map((c) => String(c[0]));
  const coverage = (w: World, cover: { id?: string }): Record<string, string> => ({ OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });

  test('which inputs start a sweep: nothing, an empty object, the Bot; anything else is a message to triage', () => {
    for (const input of [undefined, null, '', {}, { resourceType: 'Bot', id: 'b' }]) {
      expect(isSweepInput(input), JSON.stringify(input)).toBe(true);
    }
    for (const input of [{ resourceType: 'Patient', id: 'p' }, { resourceType: 'Communication' }, 'text', 0]) {
      expect(isSweepInput(input), JSON.stringify(input)).toBe(false);
    }
    expect(triageMessage(undefined)).toEqual({ ignore: 'input is undefined, not a Communication' });
    expect(triageMessage({ resourceType: 'Communication', status: 'in-progress', partOf: [{ reference: 'Communication/t' }], sender: { display: 'front desk' } })).toEqual({
      ignore: 'message has no id',
    });
    expect(triageMessage({ resourceType: 'Communication', id: 'm', status: 'in-progress', partOf: [{ reference: 'Communication/t' }], sender: { display: 'front desk' } })).toEqual({
      ignore: 'sender is not a literal reference (unknown), not the patient side',
      id: 'Communication/m',
    });
  });

  test('an ignored message: one line with its id and why', async () => {
    const w = await world({ away: true });
    await run(w, { ...message(w.thread, ref(w.owner)), id: 'm2' });
    await run(w, { ...message(w.thread, w.patient), id: undefined });
    expect(logLines()).toEqual([
      `[ooo-reroute] ignored Communication/m2: sender is Practitioner (care-team), not the patient side`,
      `[ooo-reroute] ignored: message has no id`,
    ]);
  });

  test('a reroute to a cover: a line per decision and one summary line', async () => {
    const w = await world({ away: true });
    const cover = await seedPractitioner(w.server);
    await seedSchedule(w.server, [ref(cover)]);
    const pooled = await seedTask(w.server, w.thread, { owner: undefined });
    const summary = await run(w, undefined, coverage(w, cover));
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 1, kept: 1 });
    const lines = logLines();
    expect(lines.at(-1)).toBe(`[ooo-reroute] Communication/${w.thread.id} Communication/msg-1: examined=2 rerouted=1 kept=1 repaired=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}`);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[ooo-reroute\\] Task/${w.task.id} owner=Practitioner/${w.owner.id} to-cover -> Practitioner/${cover.id}: .+`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[ooo-reroute\\] Task/${pooled.id} owner=none kept: .+`)));
  });

  test('a write that fails: logged with its status, the decision recorded as kept, the run fails naming the thread', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^POST $/, status: 503, times: 3 });
    const failure = (await run(w).catch((err: unknown) => err)) as RunFailedError<RerouteSummary>;
    // The Task patch and the header patch.
    expect(failure.message).toBe(`ooo-reroute: 2 write(s) failed for Communication/${w.thread.id}; the sweep retries them`);
    expect(failure.summary).toMatchObject({ outcome: 'failed', rerouted: 0, kept: 1, failed: 2 });
    expect(failure.summary.decisions).toEqual([expect.objectContaining({ task: `Task/${w.task.id}`, action: 'kept', reason: 'to-pool not applied (failed)' })]);
    expect(logLines()).toContain(`[ooo-reroute] WARN write Task/${w.task.id} failed (error): Service Unavailable`);
  });

  test('someone changing the Task on both attempts: counted once as a conflict, and the log says the sweep finishes it', async () => {
    const w = await world({ away: true });
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch') {
        await w.server.update({ ...(await w.server.read<Task>('Task', w.task.id)), description: `edited at ${r.url}` });
      }
    };
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0, kept: 1, conflicts: 1 });
    expect(summary.decisions).toEqual([expect.objectContaining({ action: 'kept', reason: 'to-pool not applied (conflict)' })]);
    // The second attempt reads the thread again, not the owner's availability.
    expect(w.server.countByKey()['GET Schedule/:id/$find']).toBe(1);
    expect(logLines()).toEqual([
      `[ooo-reroute] Task/${w.task.id} changed meanwhile; decided again next time`,
      `[ooo-reroute] Communication/${w.thread.id}: changed by someone else meanwhile; reading again`,
      `[ooo-reroute] Task/${w.task.id} changed meanwhile; decided again next time`,
      `[ooo-reroute] Task/${w.task.id} owner=Practitioner/${w.owner.id} kept: to-pool not applied (conflict)`,
      `[ooo-reroute] Communication/${w.thread.id} Communication/msg-1: examined=1 rerouted=0 kept=1 repaired=0 conflicts=1 failed=0 deferred={"quota":0,"deadline":0}; the sweep finishes what is left`,
    ]);
  });

  test('a retry after one of two Tasks conflicted: the summary keeps the first attempt\'s move and adds the second\'s', async () => {
    const w = await world({ away: true });
    const second = await seedTask(w.server, w.thread, { owner: ref(w.owner) });
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch') {
        w.server.beforeRequest = undefined;
        await w.server.update({ ...(await w.server.read<Task>('Task', second.id)), description: 'edited meanwhile' });
      }
    };
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 2, kept: 0, conflicts: 0 });
    expect(summary.decisions.map((d) => [d.task, d.action])).toEqual([
      [`Task/${w.task.id}`, 'to-pool'],
      [`Task/${second.id}`, 'to-pool'],
    ]);
    for (const id of [w.task.id, second.id]) {
      expect((await w.server.read<Task>('Task', id)).note).toHaveLength(1);
    }
  });

  test('a quota refusal while reading: deferred for quota, and the log says the sweep finishes it', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^GET Task$/, status: 429, times: Infinity });
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'deferred', deferred: { quota: 1, deadline: 0 } });
    expect(logLines().at(-1)).toBe(
      `[ooo-reroute] Communication/${w.thread.id} Communication/msg-1: examined=0 rerouted=0 kept=0 repaired=0 conflicts=0 failed=0 deferred={"quota":1,"deadline":0}; the sweep finishes what is left`
    );
  });

  test('the sweep: one summary line, with what is left', async () => {
    const w = await world({ away: true });
    expect(await sweep(w)).toMatchObject({ stoppedEarly: false });
    expect(logLines().at(-1)).toBe('[ooo-reroute] sweep: tasks=1 owners=1 unavailable=1 threads=1 rerouted=1 repaired=0 kept=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}');
  });
});

describe('availability details', () => {
  test('several Schedules: available if any is, whichever comes first', async () => {
    for (const order of ['off-first', 'on-first']) {
      const w = await world();
      const off = { availability: [{ days: ['mon' as const] }] };
      const [first, second] = order === 'off-first' ? [off, {}] : [{}, off];
      await w.server.update({ ...(await w.server.read('Schedule', w.schedule.id)), active: false });
      await seedSchedule(w.server, [ref(w.owner)], first);
      await seedSchedule(w.server, [ref(w.owner)], second);
      w.server.resetCounts();
      expect((await run(w)).decisions[0], order).toMatchObject({ action: 'kept', reason: expect.stringContaining('available') });
      // The first available Schedule ends the check.
      expect(w.server.countByKey()['GET Schedule/:id/$find'], order).toBe(order === 'on-first' ? 1 : 2);
    }
  });

  test('a Slot covering now decides when $find cannot: a free one outside the rules is being there, a busy one inside is being booked', async () => {
    const w = await world({ find: 'absent', schedule: { availability: [{ days: ['mon'] }] } });
    const slot = await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'free', start: '2026-11-27T15:00:00Z', end: '2026-11-27T16:00:00Z' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (working-hours)' });
    await w.server.update({ ...slot, status: 'busy' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool', reason: expect.stringContaining('off-hours') });
  });

  test('$find missing (404) or refusing (400): the rules decide, and the log names the status', async () => {
    const w = await world({ find: 'absent' });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (working-hours)' });
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/^\[ooo-reroute\] WARN Schedule\/\S+\/\$find answered 404 \(.+\); deciding from its rules and Slots$/));
  });

  test('a failing Slot search: availability unknown, logged, Task kept; a quota refusal there defers the run', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^GET Slot$/, status: 503, times: 3 });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner unknown (slots-not-read)' });
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(`[ooo-reroute] WARN Schedule/${w.schedule.id}: Slot search failed (Service Unavailable)`);
    w.server.faults.push({ match: /^GET Slot$/, status: 429, times: Infinity });
    expect(await run(w)).toMatchObject({ outcome: 'deferred', deferred: { quota: 1 } });
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toEqual(ref(w.owner));
  });

  test('a $find failing otherwise (500): unknown, no Slot search, and the log says so', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^GET Schedule\/.*\$find$/, status: 500, times: 3 });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner unknown (find-failed)' });
    expect(w.server.countByKey()['GET Slot']).toBeUndefined();
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/^\[ooo-reroute\] WARN Schedule\/\S+\/\$find failed \(.+\); availability unknown$/));
  });
});

describe('availability, as the server is asked', () => {
  test('$find: no service-type unless there are service types; several are sent comma-separated', async () => {
    const w = await world();
    await run(w);
    expect(w.server.requests.find((r) => r.key.endsWith('$find'))?.url).not.toContain('service-type');
    const params = w.schedule.extension?.[0].extension ?? [];
    const tied = (code: string) => ({ url: SCHEDULING_PARAMETERS_URL, extension: [...params, { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code } }] });
    await w.server.update({ ...w.schedule, extension: [tied('video'), tied('phone')] });
    w.server.resetCounts();
    await run(w);
    const find = new URL(w.server.requests.find((r) => r.key.endsWith('$find'))?.url as string, 'http://x');
    expect(find.searchParams.get('service-type')).toBe('http://example.com/st|video,http://example.com/st|phone');
  });

  test('a second message a minute later sees a vacation block set meanwhile: nothing is read from a cache', async () => {
    const w = await world();
    expect((await run(w)).decisions[0].action).toBe('kept');
    await seedBlock(w.server, w.schedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    vi.setSystemTime(new Date(Date.parse(NOW) + 60_000));
    expect((await run(w)).decisions[0].action).toBe('to-pool');
  });

  test("only the owner's own Slots covering now count: a colleague's vacation, or one that ended, does not", async () => {
    const w = await world();
    // Booked all day: $find shows nothing free, the Slot search decides.
    await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'busy', start: '2026-11-27T14:00:00Z', end: '2026-11-27T22:00:00Z' });
    await seedBlock(w.server, w.schedule, '2026-11-26T00:00:00Z', '2026-11-27T15:17:00Z'); // ended exactly now
    await seedBlock(w.server, w.schedule, '2026-11-27T15:18:00Z', '2026-11-28T00:00:00Z'); // starts in a minute
    const colleague = await seedPractitioner(w.server);
    await seedBlock(w.server, await seedSchedule(w.server, [ref(colleague)]), '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (booked)' });
  });

  test('a Schedule whose rules $find refuses (no duration): decided from its Slots; blocked means away', async () => {
    const w = await world({ schedule: { durationMinutes: null } });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (no-block-fallback)' });
    await seedBlock(w.server, w.schedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool' });
  });

  test('an owner without a time zone: $find refuses, the rules cannot tell, so the Slots decide', async () => {
    const w = await world();
    await w.server.update({ ...w.owner, extension: [] });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (no-block-fallback)' });
  });
});

describe('coverage, as asked', () => {
  test('an available owner: the cover is not checked', async () => {
    const w = await world();
    const cover = await seedPractitioner(w.server);
    await seedSchedule(w.server, [ref(cover)]);
    const summary = await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(summary.decisions[0].action).toBe('kept');
    expect(w.server.countByKey()['GET Schedule/:id/$find']).toBe(1);
  });

  test('a cover who is away: the log says so and the Task goes to the pool', async () => {
    const w = await world({ away: true });
    const cover = await seedPractitioner(w.server);
    await seedBlock(w.server, await seedSchedule(w.server, [ref(cover)]), '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringMatching(new RegExp(`^\\[ooo-reroute\\] cover Practitioner/${cover.id} for Practitioner/${w.owner.id} not available \\(blocked:Slot/\\S+\\); using the pool$`))
    );
  });

  test('a coverage entry naming an Organization: ignored with a warning, its Schedules never read', async () => {
    const w = await world({ away: true });
    await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: 'Organization/front-desk' }) });
    expect(w.server.requests.filter((r) => r.key === 'GET Schedule').map((r) => r.url).join()).not.toContain('front-desk');
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain(
      `[ooo-reroute] WARN OOO_COVERAGE entry for Practitioner/${w.owner.id} is not another Practitioner or PractitionerRole; ignored`
    );
  });
});
