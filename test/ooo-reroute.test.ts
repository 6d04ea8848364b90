import type { WithId } from '@medplum/core';
import type { Binary, Communication, Slot, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, isSweepInput, triageMessage } from '../src/ooo-reroute';
import { RunFailedError } from '../src/lib/bot-runtime';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { latestReroute, ownersToCheck, planThread } from '../src/lib/reroute-plan';
import type { OwnerFacts } from '../src/lib/availability';
import type { RouteFacts } from '../src/lib/reroute-plan';
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
      role: 'patient',
    });
  });

  test('accepts a RelatedPerson writing for the patient', () => {
    expect(triageMessage(message(thread, { reference: 'RelatedPerson/r' }, { id: 'm' }))).toEqual({
      message: 'Communication/m',
      thread: 'Communication/t1',
      role: 'patient',
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
  test('a provider on duty at 10:17 keeps the Task, in 2 requests (the thread with its owners and Schedules, then their absence blocks)', async () => {
    const w = await world();
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', tasksExamined: 1, rerouted: 0, kept: 1 });
    expect(summary.decisions[0].reason).toBe('owner available (on-shift)');
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.meta?.versionId).toBe(w.task.meta?.versionId);
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1 });
    expect(w.server.requests.find((r) => r.key === 'GET Slot')?.url).toContain('status=busy-unavailable');
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
  test('vacation block: the Task returns to the pool with one note in words, in 3 requests', async () => {
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
    // For the clinician: the provider's name and the reason in words; the patient's name never.
    expect(task.note?.[0].text).toBe('Returned to the team pool: Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
    expect(task.note?.[0].text).not.toContain(`${PHI_MARKER}PATIENT`);
    expect(latestReroute(task)).toEqual({ from: `Practitioner/${w.owner.id}`, to: undefined, trigger: 'Communication/msg-1', headerVersion: w.thread.meta?.versionId, reason: 'absent' });
    const header = await w.server.read<Communication>('Communication', w.thread.id);
    expect(header.recipient).toEqual([w.patient]);
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1, 'POST batch': 1 });
  });

  test('no availability defined today (Friday) counts as unavailable', async () => {
    const w = await world();
    await w.server.update({
      ...w.schedule,
      extension: (await seedSchedule(w.server, [ref(w.owner)], { availability: [{ days: ['mon', 'tue', 'wed', 'thu'] }] })).extension,
    });
    expect((await run(w)).rerouted).toBe(1);
  });

  test('outside working hours (07:00 local) counts as unavailable: the Task moves, the provider stays on the thread', async () => {
    vi.setSystemTime(new Date('2026-11-27T12:00:00.000Z'));
    const w = await world();
    expect((await run(w)).rerouted).toBe(1);
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toBeUndefined();
    // The end of a shift moves the work and writes the note, and nothing else: no header write.
    const header = await w.server.read<Communication>('Communication', w.thread.id);
    expect(header.recipient).toEqual([w.patient, ref(w.owner)]);
    expect(header.meta?.versionId).toBe(w.thread.meta?.versionId);
  });

  test('off shift with a cover: the cover gets the Task, the provider stays on the thread and the cover is not added', async () => {
    vi.setSystemTime(new Date('2026-11-27T12:00:00.000Z'));
    const w = await world();
    const cover = await seedPractitioner(w.server, 'UTC');
    await seedSchedule(w.server, [ref(cover)], { availability: [{ from: '00:00:00', hours: 24 }] });
    const summary = await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(summary.decisions[0]).toMatchObject({ action: 'to-cover', cover: `Practitioner/${cover.id}` });
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toEqual([w.patient, ref(w.owner)]);
  });

  test('a provider whose only Schedule has no working hours is not working: rerouted, and stays on the thread', async () => {
    const w = await world();
    await w.server.update({ ...w.schedule, extension: undefined });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool', reason: 'no-working-hours written' });
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task.owner).toBeUndefined();
    expect(task.note?.at(-1)?.text).toContain('not working (their schedule has no working hours set)');
    expect((await w.server.read<Communication>('Communication', w.thread.id)).recipient).toContainEqual(ref(w.owner));
    const away = await world({ away: true });
    await away.server.update({ ...away.schedule, extension: undefined });
    expect((await run(away)).decisions[0]).toMatchObject({ action: 'to-pool', reason: 'absent now' });
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
    expect(first.note?.map((n) => n.text?.slice(0, 12))).toEqual(['earlier note', 'Returned to ']);
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
    expect(task.note?.[0].text).toBe('Reassigned to Pat PHI-PRACTITIONER-NAME, who covers for them: Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
    expect(latestReroute(task)?.to).toBe(`Practitioner/${cover.id}`);
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

  test.each([
    ['not JSON', '{not json', 'secret OOO_COVERAGE is not valid JSON; using the defaults'],
    ['an array', '["Practitioner/b"]', 'secret OOO_COVERAGE: must be a JSON object like {"Practitioner/a": "Practitioner/b"}; using the defaults'],
    ['a cover given as an array', '{"OWNER": ["Practitioner/b"]}', 'secret OOO_COVERAGE: entry "OWNER" must map a Practitioner or PractitionerRole reference to another one; using the defaults'],
  ])('OOO_COVERAGE %s: one warning, the pool, and a valid patch', async (_name, value, warning) => {
    const w = await world({ away: true });
    const summary = await run(w, undefined, { OOO_COVERAGE: value.replace('OWNER', `Practitioner/${w.owner.id}`) });
    expect(summary.decisions[0].action).toBe('to-pool');
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toBeUndefined();
    const warnings = vi.mocked(console.log).mock.calls.map((c) => String(c[0])).filter((l) => l.includes('OOO_COVERAGE'));
    expect(warnings).toEqual([`[ooo-reroute] WARN ${warning.replace('OWNER', `Practitioner/${w.owner.id}`)}`]);
  });
});

describe('when availability cannot be read', () => {
  test('no Schedule at all: the Task stays and the reason is logged', async () => {
    const w = await world({ away: true });
    await w.server.update({ ...w.schedule, actor: [{ reference: 'Practitioner/someone-else' }] });
    const summary = await run(w);
    expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: 'owner unknown (no-schedule)' });
  });

  test('an inactive Schedule is not a Schedule', async () => {
    const w = await world({ away: true });
    await w.server.update({ ...w.schedule, active: false });
    expect((await run(w)).kept).toBe(1);
  });

  test('a provider without a time zone: available unless blocked (the documented fallback); $find is never asked', async () => {
    const away = await world({ away: true });
    const present = await world({ schedule: { availability: [{ days: ['mon'] }] } });
    for (const w of [away, present]) {
      await w.server.update({ ...w.owner, extension: undefined });
    }
    expect((await run(away)).rerouted).toBe(1);
    expect((await run(present)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (no-time-zone)' });
    expect([...away.server.requests, ...present.server.requests].some((r) => r.key.endsWith('$find'))).toBe(false);
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
      if (r.key === 'GET Slot') {
        vi.setSystemTime(new Date(Date.now() + 9_000)); // the Slot search took 9 s of a 10 s timeout
      }
    };
    expect(await run(w)).toMatchObject({ outcome: 'deferred', rerouted: 0, deferred: { quota: 0, deadline: 1 } });
    expect((await w.server.read<Task>('Task', w.task.id)).meta?.versionId).toBe(w.task.meta?.versionId);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('the sweep finishes what is left'))).toBe(true);
    w.server.beforeRequest = undefined;
    expect(await sweep(w)).toMatchObject({ rerouted: 1, failed: 0 });
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toBeUndefined();
  });

  test('a 503 on the Slot search fails the run before any write; the sweep completes it', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^GET Slot$/, status: 503, times: 3 });
    await expect(run(w)).rejects.toThrow();
    expect((await w.server.read<Task>('Task', w.task.id)).meta?.versionId).toBe(w.task.meta?.versionId);
    expect(await sweep(w)).toMatchObject({ rerouted: 1, failed: 0 });
  });
});

describe('bad input: a clear logged outcome, never a corrupted resource', () => {
  test.each<[string, (w: World) => Promise<void>, string, boolean]>([
    ['a Task owned by a Group', async (w) => {
      const group = await w.server.seed({ resourceType: 'Group', type: 'practitioner', actual: true });
      await w.server.update({ ...w.task, owner: ref(group) });
    }, 'owner type Group is not rerouted', false],
    ['a Schedule with several actors', async (w) => {
      const other = await seedPractitioner(w.server);
      await w.server.update({ ...w.schedule, actor: [ref(w.owner), ref(other)] });
    }, 'absent now', true],
    ['a Schedule whose actor has no time zone', async (w) => {
      await w.server.update({ ...w.owner, extension: undefined });
    }, 'absent now', true],
    ['a thread header that was deleted (Tasks still point at it)', async (w) => {
      await w.server.medplum.deleteResource('Communication', w.thread.id);
    }, 'absent now', true],
    ['a thread that was closed (header completed)', async (w) => {
      await w.server.update({ ...w.thread, status: 'completed' });
    }, 'thread is completed, not in progress', false],
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
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
  });

  test('a long overnight shift begun eleven hours ago, on a 15-minute grid', async () => {
    vi.setSystemTime(new Date('2026-11-28T05:00:00.000Z')); // 00:00 in New York; the shift began at 13:00
    const w = await world({ schedule: { ...everyDay('13:00:00', 14), durationMinutes: 15, alignmentMinutes: 15 } });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
  });

  test.each([
    ['booked all hour', [['14:00', '17:00']]],
    ['in the gap between two appointments', [['14:00', '15:15'], ['15:30', '16:00']]],
    ['booked to the end of the shift', [['15:00', '22:00']]],
  ])('appointments never make anyone unavailable: %s is kept', async (_name, bookings) => {
    const w = await world();
    for (const [from, to] of bookings) {
      await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'busy', start: `2026-11-27T${from}:00Z`, end: `2026-11-27T${to}:00Z` });
    }
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
    // Five minutes later, between bookings or not, the same.
    vi.setSystemTime(new Date(Date.now() + 5 * 60_000));
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
    expect(await sweep(w)).toMatchObject({ rerouted: 0 });
  });

  test('an appointment outside working hours does not make the owner present', async () => {
    vi.setSystemTime(new Date('2026-11-27T12:30:00.000Z')); // 07:30 local, hours 09:00-17:00
    const w = await world();
    await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'busy', start: '2026-11-27T12:00:00Z', end: '2026-11-27T13:00:00Z' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool' });
  });

  test('a time zone that is not an IANA code: logged, availability unknown, Task kept; a vacation block still means away', async () => {
    const w = await world();
    await w.server.update({ ...w.owner, extension: [{ url: TIMEZONE_URL, valueCode: 'Eastern' }] });
    const summary = await run(w);
    expect(summary).toMatchObject({ outcome: 'done', rerouted: 0 });
    expect(summary.decisions[0].reason).toBe('owner unknown (invalid-time-zone)');
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain(
      `[ooo-reroute] WARN Practitioner/${w.owner.id}: working hours cannot be judged (invalid-time-zone); their Tasks are always kept. npm run status lists such owners`
    );
    await seedBlock(w.server, w.schedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool', reason: 'absent now' });
  });

  test('a held Task keeps its hold: owner removed, status on-hold, the note says so', async () => {
    const w = await world({ away: true, task: { status: 'on-hold' } });
    expect((await run(w)).rerouted).toBe(1);
    const task = await w.server.read<Task>('Task', w.task.id);
    expect(task).toMatchObject({ status: 'on-hold' });
    expect(task.owner).toBeUndefined();
    expect(task.note?.[0].text).toContain('The Task stays on hold as it was.');
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
    expect((await run(w)).decisions[0].reason).toBe('owner available (on-shift)');
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
  const nowMs = Date.parse(NOW);
  const dayRules = (days: string[]) => ({
    sets: [{ availability: [{ days, minutesOfDay: [540], durationMinutes: 480 }], durationMinutes: 30, bufferBeforeMinutes: 0, bufferAfterMinutes: 0, alignmentMinutes: 60, serviceTypes: [] }],
  });
  /** An owner's facts that make them on shift, off shift (no hours on Fridays), or absent (a block covering now). */
  const facts = (owner: string, state: 'on-shift' | 'off-shift' | 'absent' | 'unknown', name = 'Dr Ada Able'): OwnerFacts => ({
    owner,
    name,
    timeZone: state === 'unknown' ? 'Eastern' : 'America/New_York',
    schedules: [
      {
        schedule: 'Schedule/s',
        rules: dayRules(state === 'off-shift' ? ['mon'] : ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
        blocks: state === 'absent' ? [{ slot: 'Slot/s', start: nowMs - 3_600_000, end: nowMs + 3_600_000 }] : [],
      },
    ],
  });
  const route = (states: Record<string, OwnerFacts>, extra: Partial<RouteFacts> = {}): RouteFacts => ({
    now: nowMs,
    owner: (ref) => states[ref],
    coverage: {},
    serviceTypes: [],
    ...extra,
  });
  const owners = route({ 'Practitioner/a': facts('Practitioner/a', 'absent') });
  const thread = { thread: 'Communication/h', header, tasks: [task], trigger: 'Communication/m', triggerTime: nowMs - 60_000, waitingOnCareTeam: true };
  const patchOf = (entry: { resource?: unknown }): unknown[] => JSON.parse(Buffer.from((entry.resource as Binary).data as string, 'base64').toString());
  const noteOf = (entry: { resource?: unknown }): { text: string; extension: unknown[] } => {
    const op = patchOf(entry).find((o) => (o as { path: string }).path.startsWith('/note')) as { value: unknown };
    return (Array.isArray(op.value) ? op.value[0] : op.value) as { text: string; extension: unknown[] };
  };
  const record = (from: string, extra: { to?: string; trigger?: string; headerVersion?: string; reason?: string } = {}) => ({
    authorString: 'ooo-reroute',
    text: 'earlier',
    extension: [
      {
        url: 'urn:medplum-messaging-bots:ooo-reroute',
        extension: [
          { url: 'from', valueReference: { reference: from } },
          ...(extra.to ? [{ url: 'to', valueReference: { reference: extra.to } }] : []),
          ...(extra.trigger ? [{ url: 'trigger', valueReference: { reference: extra.trigger } }] : []),
          ...(extra.headerVersion ? [{ url: 'header-version', valueId: extra.headerVersion }] : []),
          { url: 'reason', valueCode: extra.reason ?? 'absent' },
        ],
      },
    ],
  });

  // A note written before the record extension existed: read from its text.
  const legacyToCover = {
    authorString: 'ooo-reroute',
    text: `Out-of-office reroute: owner Practitioner/a unavailable at ${NOW} (x); triggered by Communication/m0; reassigned to Practitioner/c.`,
  };

  test('guards the version and the owner, removes the owner, sets requested, adds a note in words with the reroute record', () => {
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
            text: 'Returned to the team pool: Dr Ada Able is away (vacation or leave on their schedule).',
            extension: [
              {
                url: 'urn:medplum-messaging-bots:ooo-reroute',
                extension: [
                  { url: 'from', valueReference: { reference: 'Practitioner/a' } },
                  { url: 'trigger', valueReference: { reference: 'Communication/m' } },
                  { url: 'header-version', valueId: 'h1' },
                  { url: 'reason', valueCode: 'absent' },
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

  test('off shift when the patient wrote: the note gives the time in the provider\'s zone; no name read means no name written', () => {
    const offShift = route({ 'Practitioner/a': { ...facts('Practitioner/a', 'off-shift'), name: undefined } });
    const plan = planThread({ ...thread, triggerTime: Date.parse('2026-11-27T15:10:00Z') }, offShift);
    expect(plan.decisions[0]).toMatchObject({ action: 'to-pool', reason: 'off-shift written' });
    expect(noteOf(plan.entries[0]).text).toBe(
      'Returned to the team pool: The assigned provider was outside their working hours when the patient wrote (Nov 27, 2026, 10:10 AM (America/New_York)).'
    );
  });

  test.each(['on-hold', 'draft'] as const)('a %s Task keeps its status: the owner goes, the hold stays, the note says so', (status) => {
    const plan = planThread({ ...thread, tasks: [{ ...task, status, note: [{ text: 'waiting on labs' }] }] }, owners);
    const patch = patchOf(plan.entries[0]) as { op: string; path: string; value?: { text?: string } }[];
    expect(patch.map((op) => `${op.op} ${op.path}`)).toEqual(['test /meta/versionId', 'test /owner', 'remove /owner', 'add /note/-', 'add /lastModified']);
    expect(patch[3].value?.text).toContain(status === 'on-hold' ? 'The Task stays on hold as it was.' : 'The Task stays a draft as it was.');
  });

  test('to a cover who is on shift: the owner is replaced, the cover joins the recipients, the note names the cover', () => {
    const covered = route({ 'Practitioner/a': facts('Practitioner/a', 'absent'), 'Practitioner/c': facts('Practitioner/c', 'on-shift', 'Dr Cy Cover') }, { coverage: { 'Practitioner/a': 'Practitioner/c' } });
    const plan = planThread(thread, covered);
    expect(plan.decisions).toEqual([{ task: 'Task/t', owner: 'Practitioner/a', action: 'to-cover', reason: 'absent now', cover: 'Practitioner/c' }]);
    expect(patchOf(plan.entries[0])).toContainEqual({ op: 'replace', path: '/owner', value: { reference: 'Practitioner/c' } });
    expect(noteOf(plan.entries[0]).text).toBe('Reassigned to Dr Cy Cover, who covers for them: Dr Ada Able is away (vacation or leave on their schedule).');
    expect(patchOf(plan.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
    // A cover who is off shift, or absent, or not read: the pool.
    for (const state of ['off-shift', 'absent', 'unknown'] as const) {
      const off = route({ 'Practitioner/a': facts('Practitioner/a', 'absent'), 'Practitioner/c': facts('Practitioner/c', state) }, { coverage: { 'Practitioner/a': 'Practitioner/c' } });
      expect(planThread(thread, off).decisions[0].action).toBe('to-pool');
    }
  });

  test('unknown availability, an owner on shift, or the care team speaking last change nothing', () => {
    for (const [state, reason] of [['unknown', 'owner unknown (invalid-time-zone)'], ['on-shift', 'owner available (on-shift)']] as const) {
      const plan = planThread(thread, route({ 'Practitioner/a': facts('Practitioner/a', state) }));
      expect(plan.entries).toHaveLength(0);
      expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason });
    }
    const answered = planThread({ ...thread, waitingOnCareTeam: false }, owners);
    expect(answered.entries).toHaveLength(0);
    expect(answered.decisions[0].reason).toBe('owner unavailable, but the care team spoke last');
  });

  describe('the sweep replays the event: only an absence hands off what was written on shift', () => {
    // Off shift now (no hours on Fridays in these facts means "off" at every instant); the
    // patient wrote at a time decided by a second Schedule that was on shift then.
    const endedShift: OwnerFacts = {
      owner: 'Practitioner/a',
      name: 'Dr Ada Able',
      timeZone: 'America/New_York',
      schedules: [{ schedule: 'Schedule/s', rules: dayRules(['fri']), blocks: [] }],
    };
    const evening = Date.parse('2026-11-27T22:15:00Z'); // 17:15 in New York: the 09:00-17:00 shift ended
    const at = (ms: number): RouteFacts => route({ 'Practitioner/a': endedShift }, { now: ms });

    test('the patient wrote during the shift, the shift ended: kept, counted as on duty when written', () => {
      const plan = planThread({ ...thread, triggerTime: Date.parse('2026-11-27T21:00:00Z') }, at(evening));
      expect(plan.entries).toHaveLength(0);
      expect(plan.decisions[0]).toMatchObject({ action: 'kept', onDutyWhenWritten: true, reason: 'owner available (on-shift) when the patient wrote; off-shift now' });
    });
    test('the patient wrote after the shift ended and the event was lost: rerouted', () => {
      const plan = planThread({ ...thread, triggerTime: Date.parse('2026-11-27T22:05:00Z') }, at(evening));
      expect(plan.decisions[0]).toMatchObject({ action: 'to-pool', reason: 'off-shift written' });
    });
    test('a vacation block that began after the patient wrote: rerouted, whatever the shift was then', () => {
      const blocked = { ...endedShift, schedules: [{ ...endedShift.schedules[0], blocks: [{ slot: 'Slot/v', start: evening - 60_000, end: evening + 86_400_000 }] }] };
      const plan = planThread({ ...thread, triggerTime: Date.parse('2026-11-27T21:00:00Z') }, { ...route({ 'Practitioner/a': blocked }), now: evening });
      expect(plan.decisions[0]).toMatchObject({ action: 'to-pool', reason: 'absent now' });
    });
    test('back on shift now after writing off shift: kept (the owner is there to answer)', () => {
      const plan = planThread({ ...thread, triggerTime: Date.parse('2026-11-27T12:00:00Z') }, at(Date.parse('2026-11-27T15:00:00Z')));
      expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
    });
    test('a message stamped in the future is read as written now', () => {
      const plan = planThread({ ...thread, triggerTime: evening + 3_600_000 * 24 }, at(evening));
      expect(plan.decisions[0]).toMatchObject({ action: 'to-pool', reason: 'off-shift written' });
    });
  });

  test('a closed thread (header not in progress) keeps every Task, with no write', () => {
    const plan = planThread({ ...thread, header: { ...header, status: 'completed' } }, owners);
    expect(plan.entries).toHaveLength(0);
    expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason: 'thread is completed, not in progress' });
  });

  test('a half-done reroute (Task moved, header as the reroute left it) is finished: header only, no second note', () => {
    const moved = { ...task, owner: undefined, status: 'requested' as const, note: [record('Practitioner/a', { trigger: 'Communication/m0', headerVersion: 'h1' })] };
    const plan = planThread({ ...thread, tasks: [moved], trigger: 'Communication/m1' }, owners);
    expect(plan.repaired).toEqual(['Practitioner/a']);
    expect(plan.entries).toHaveLength(1);
    expect(patchOf(plan.entries[0])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }] });
    expect(plan.decisions[0]).toMatchObject({ action: 'kept', reason: 'no owner (already in the pool)' });
  });

  test('repairs respect people: not once the header changed since the reroute, not once the patient stopped waiting, not from notes without a record of the header', () => {
    const moved = { ...task, owner: undefined, status: 'requested' as const, note: [record('Practitioner/a', { headerVersion: 'h1' })] };
    // A person re-added the owner: the header has another version.
    expect(planThread({ ...thread, header: { ...header, meta: { versionId: 'h2' } }, tasks: [moved] }, owners).entries).toHaveLength(0);
    expect(planThread({ ...thread, tasks: [moved], waitingOnCareTeam: false }, owners).entries).toHaveLength(0);
    expect(planThread({ ...thread, tasks: [{ ...moved, note: [record('Practitioner/a')] }] }, owners).entries).toHaveLength(0);
    expect(planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/c' }, note: [legacyToCover] }] }, owners).repaired).toEqual([]);
    // A reroute at the end of a shift left the owner on the thread on purpose: nothing to finish.
    expect(planThread({ ...thread, tasks: [{ ...moved, note: [record('Practitioner/a', { headerVersion: 'h1', reason: 'off-shift' })] }] }, owners).entries).toHaveLength(0);
    // This run's own move (an event's retry after the header conflicted) is finished on the new version.
    const retry = planThread({ ...thread, header: { ...header, meta: { versionId: 'h2' } }, tasks: [moved] }, { ...owners, movedThisRun: new Set(['Task/t']) });
    expect(retry.repaired).toEqual(['Practitioner/a']);
  });

  test('no repair while the earlier owner is back, still owns another open Task, or is not listed any more', () => {
    const moved = { ...task, id: 't2', owner: undefined, note: [record('Practitioner/a', { headerVersion: 'h1' })] };
    const back = planThread({ ...thread, tasks: [moved] }, route({ 'Practitioner/a': facts('Practitioner/a', 'on-shift') }));
    expect(back.entries).toHaveLength(0);
    const stillOwning = planThread({ ...thread, tasks: [moved, { ...task, status: 'accepted' }], waitingOnCareTeam: false }, owners);
    expect(stillOwning.entries).toHaveLength(0);
    const notListed = planThread({ ...thread, header: { ...header, recipient: [{ reference: 'Patient/p' }] }, tasks: [moved] }, owners);
    expect(notListed.entries).toHaveLength(0);
  });

  test("the latest reroute record: the bot's last note, from its record, else from its text; nothing without a from", () => {
    expect(latestReroute({ ...task, note: [record('Practitioner/x', { to: 'Practitioner/c', trigger: 'Communication/m0', headerVersion: '7' }), { authorString: 'nurse', text: 'owner Practitioner/z unavailable' }] })).toEqual({
      from: 'Practitioner/x',
      to: 'Practitioner/c',
      trigger: 'Communication/m0',
      headerVersion: '7',
      reason: 'absent',
    });
    expect(latestReroute({ ...task, note: [record('Practitioner/x'), record('Practitioner/y', { trigger: 'Communication/m2' })] })).toEqual({ from: 'Practitioner/y', to: undefined, trigger: 'Communication/m2', headerVersion: undefined, reason: 'absent' });
    const withoutFrom = { authorString: 'ooo-reroute', text: 'owner Practitioner/t unavailable', extension: [{ url: 'urn:medplum-messaging-bots:ooo-reroute', extension: [{ url: 'to', valueReference: { reference: 'Practitioner/c' } }] }] };
    expect(latestReroute({ ...task, note: [withoutFrom] })).toBeUndefined();
    const legacyToPool = { authorString: 'ooo-reroute', text: `Out-of-office reroute: owner Practitioner/a unavailable at ${NOW} (x); triggered by Communication/m0; returned to the pool.` };
    expect(latestReroute({ ...task, note: [legacyToPool] })).toEqual({ from: 'Practitioner/a', to: undefined, trigger: 'Communication/m0' });
    expect(latestReroute({ ...task, note: [legacyToCover] })).toEqual({ from: 'Practitioner/a', to: 'Practitioner/c', trigger: 'Communication/m0' });
    expect(latestReroute({ ...task, note: [{ authorString: 'ooo-reroute', text: 'something else' }] })).toBeUndefined();
    expect(latestReroute(task)).toBeUndefined();
  });

  test('the header: the owner as its only recipient leaves none; a header without recipients gets the cover added', () => {
    const alone = planThread({ ...thread, header: { ...header, recipient: [{ reference: 'Practitioner/a' }] } }, owners);
    expect(patchOf(alone.entries[1])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'h1' },
      { op: 'remove', path: '/recipient' },
    ]);
    const covered = route({ 'Practitioner/a': facts('Practitioner/a', 'absent'), 'Practitioner/c': facts('Practitioner/c', 'on-shift') }, { coverage: { 'Practitioner/a': 'Practitioner/c' } });
    const bare = planThread({ ...thread, header: { ...header, recipient: undefined } }, covered);
    expect(patchOf(bare.entries[1])).toEqual([
      { op: 'test', path: '/meta/versionId', value: 'h1' },
      { op: 'add', path: '/recipient', value: [{ reference: 'Practitioner/c' }] },
    ]);
    // A recipient without a reference (a display only) is kept as it is.
    const display = planThread({ ...thread, header: { ...header, recipient: [{ display: 'front desk' }, { reference: 'Practitioner/a' }] } }, owners);
    expect(patchOf(display.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ display: 'front desk' }] });
    // A cover already listed is not listed twice.
    const listed = planThread({ ...thread, header: { ...header, recipient: [...(header.recipient ?? []), { reference: 'Practitioner/c' }] } }, covered);
    expect(patchOf(listed.entries[1])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
    expect(noteOf(listed.entries[0]).extension).toEqual([
      {
        url: 'urn:medplum-messaging-bots:ooo-reroute',
        extension: [
          { url: 'from', valueReference: { reference: 'Practitioner/a' } },
          { url: 'to', valueReference: { reference: 'Practitioner/c' } },
          { url: 'trigger', valueReference: { reference: 'Communication/m' } },
          { url: 'header-version', valueId: 'h1' },
          { url: 'reason', valueCode: 'absent' },
        ],
      },
    ]);
  });

  test('a repair adds the cover only while the cover still holds the Task; an owner not read is kept, saying so', () => {
    const toCover = record('Practitioner/a', { to: 'Practitioner/c', headerVersion: 'h1' });
    const stillCover = planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/c' }, note: [toCover] }] }, route({ 'Practitioner/a': facts('Practitioner/a', 'absent'), 'Practitioner/c': facts('Practitioner/c', 'on-shift') }));
    expect(patchOf(stillCover.entries[0])).toContainEqual({ op: 'replace', path: '/recipient', value: [{ reference: 'Patient/p' }, { reference: 'Practitioner/c' }] });
    const takenOver = planThread({ ...thread, tasks: [{ ...task, owner: { reference: 'Practitioner/d' }, note: [toCover] }] }, route({ 'Practitioner/a': facts('Practitioner/a', 'absent'), 'Practitioner/d': facts('Practitioner/d', 'on-shift') }));
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
    // An off-shift reroute left its owner on the header on purpose: a follow-up reads no Schedule for them.
    const offShift = { ...earlier, note: [record('Practitioner/e', { reason: 'off-shift' })] };
    expect(ownersToCheck({ ...thread, header: listed, tasks: [offShift] })).toEqual([]);
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
    expect(w.server.countByKey()['GET Slot']).toBe(1);
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
    expect(logLines().at(-1)).toBe(
      '[ooo-reroute] sweep: tasks=1 threads=1 waiting=1 owners=1 unavailable=1 rerouted=1 repaired=0 kept=0 keptOnDuty=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}'
    );
  });
});

describe('availability details', () => {
  test('several Schedules: available if any is, whichever comes first; all read in one Slot search', async () => {
    for (const order of ['off-first', 'on-first']) {
      const w = await world();
      const off = { availability: [{ days: ['mon' as const] }] };
      const [first, second] = order === 'off-first' ? [off, {}] : [{}, off];
      await w.server.update({ ...(await w.server.read('Schedule', w.schedule.id)), active: false });
      await seedSchedule(w.server, [ref(w.owner)], first);
      await seedSchedule(w.server, [ref(w.owner)], second);
      w.server.resetCounts();
      expect((await run(w)).decisions[0], order).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
      expect(w.server.countByKey()['GET Slot'], order).toBe(1);
    }
  });

  test('a free Slot is not working hours, and a busy one is not absence: only the rules and busy-unavailable Slots decide', async () => {
    const w = await world({ schedule: { availability: [{ days: ['mon'] }] } });
    const slot = await w.server.seed<Slot>({ resourceType: 'Slot', schedule: ref(w.schedule), status: 'free', start: '2026-11-27T15:00:00Z', end: '2026-11-27T16:00:00Z' });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool', reason: 'off-shift written' });
    const on = await world();
    await on.server.seed<Slot>({ ...slot, id: undefined, schedule: ref(on.schedule), status: 'busy' });
    expect((await run(on)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
  });

  test('a quota refusal on the Slot search defers the run, nothing written', async () => {
    const w = await world({ away: true });
    w.server.faults.push({ match: /^GET Slot$/, status: 429, times: Infinity });
    expect(await run(w)).toMatchObject({ outcome: 'deferred', deferred: { quota: 1 } });
    expect((await w.server.read<Task>('Task', w.task.id)).owner).toEqual(ref(w.owner));
  });

  test('an owner whose hours cannot be judged is logged once per run, however many Tasks they hold', async () => {
    const w = await world();
    await w.server.update({ ...w.owner, extension: undefined });
    await seedTask(w.server, w.thread, { owner: ref(w.owner) });
    await run(w);
    const warnings = vi.mocked(console.log).mock.calls.map((c) => String(c[0])).filter((l) => l.includes('working hours cannot be judged'));
    expect(warnings).toEqual([`[ooo-reroute] WARN Practitioner/${w.owner.id}: working hours cannot be judged (no-time-zone); treated as available unless a vacation block covers now. npm run status lists such owners`]);
  });
});

describe('availability, as the server is asked', () => {
  test('OOO_SERVICE_TYPE chooses the rule sets; $find is never asked', async () => {
    const w = await world();
    const params = w.schedule.extension?.[0].extension ?? [];
    const tied = (code: string, from: string) => ({
      url: SCHEDULING_PARAMETERS_URL,
      extension: [
        ...params.filter((p) => p.url !== 'availability'),
        { url: 'availability', valueTiming: { repeat: { dayOfWeek: ['fri' as const], timeOfDay: [from], duration: 1, durationUnit: 'h' as const } } },
        { url: 'serviceType', valueCoding: { system: 'http://example.com/st', code } },
      ],
    });
    await w.server.update({ ...w.schedule, extension: [tied('video', '10:00:00'), tied('phone', '13:00:00')] });
    // Every set is tied to a service type: the owner is available for any of them.
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
    expect((await run(w, undefined, { OOO_SERVICE_TYPE: 'http://example.com/st|phone' })).decisions[0]).toMatchObject({ action: 'to-pool' });
    expect(w.server.requests.some((r) => r.key.endsWith('$find'))).toBe(false);
  });

  test('a second message a minute later sees a vacation block set meanwhile: nothing is read from a cache', async () => {
    const w = await world();
    expect((await run(w)).decisions[0].action).toBe('kept');
    await seedBlock(w.server, w.schedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    vi.setSystemTime(new Date(Date.parse(NOW) + 60_000));
    expect((await run(w)).decisions[0].action).toBe('to-pool');
  });

  test("only the owner's own blocks covering now count: a colleague's vacation, or one that ended, does not", async () => {
    const w = await world();
    await seedBlock(w.server, w.schedule, '2026-11-26T00:00:00Z', '2026-11-27T15:17:00Z'); // ended exactly now
    await seedBlock(w.server, w.schedule, '2026-11-27T15:18:00Z', '2026-11-28T00:00:00Z'); // starts in a minute
    const colleague = await seedPractitioner(w.server);
    await seedBlock(w.server, await seedSchedule(w.server, [ref(colleague)]), '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
  });

  test('a Schedule whose rules cannot be read (no duration): unknown, kept, even when blocked elsewhere in time', async () => {
    const w = await world({ schedule: { durationMinutes: null } });
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'kept', reason: 'owner unknown (unreadable-rules)' });
    await seedBlock(w.server, w.schedule, '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    expect((await run(w)).decisions[0]).toMatchObject({ action: 'to-pool', reason: 'absent now' });
  });
});

describe('coverage, as asked', () => {
  test('an available owner: the cover is not checked', async () => {
    const w = await world();
    const cover = await seedPractitioner(w.server);
    await seedSchedule(w.server, [ref(cover)]);
    const summary = await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(summary.decisions[0].action).toBe('kept');
    expect(w.server.countByKey()).toEqual({ 'GET Task': 1, 'GET Slot': 1 });
  });

  test('a cover who is away: the log says so and the Task goes to the pool', async () => {
    const w = await world({ away: true });
    const cover = await seedPractitioner(w.server);
    await seedBlock(w.server, await seedSchedule(w.server, [ref(cover)]), '2026-11-27T00:00:00Z', '2026-11-28T00:00:00Z');
    await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: `Practitioner/${cover.id}` }) });
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringMatching(new RegExp(`^\\[ooo-reroute\\] cover Practitioner/${cover.id} for Practitioner/${w.owner.id} not available \\(absent\\); using the pool$`))
    );
  });

  test('a coverage entry naming an Organization: the secret is refused with a warning, its Schedules never read', async () => {
    const w = await world({ away: true });
    await run(w, undefined, { OOO_COVERAGE: JSON.stringify({ [`Practitioner/${w.owner.id}`]: 'Organization/front-desk' }) });
    expect(w.server.requests.filter((r) => r.key === 'GET Schedule').map((r) => r.url).join()).not.toContain('front-desk');
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain(
      `[ooo-reroute] WARN secret OOO_COVERAGE: entry "Practitioner/${w.owner.id}" must map a Practitioner or PractitionerRole reference to another one; using the defaults`
    );
  });
});
