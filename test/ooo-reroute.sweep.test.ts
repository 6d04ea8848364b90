// The out-of-office sweep: the same bot on a cron run (input: the Bot) or an empty $execute,
// reconciling what the event path should have done.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, isSweepInput, triageMessage } from '../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent, message, ref, seedMessage, seedOwnedThread, seedPractitioner, seedSchedule, seedTask, seedThread } from './harness/fixtures';
import type { OwnedThread } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import type { ServerMock, ServerMockOptions } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

useFixedTimeAndQuietConsole(NOW);

const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
async function sweep(server: ServerMock, input: unknown = CRON, secrets: Record<string, string> = {}): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '60', ...secrets }))) as SweepSummary;
}

/** A thread whose patient wrote `ago` ago, with a response Task owned by a provider away or present. */
async function waitingThread(
  server: ServerMock,
  options: { away?: boolean; owner?: OwnedThread['owner']; wroteAgo?: number } = {}
): Promise<OwnedThread & { message?: Communication }> {
  const seeded = await seedOwnedThread(server, { away: options.away });
  if (options.owner) {
    await server.update({ ...seeded.task, owner: ref(options.owner) });
    await server.update({ ...seeded.thread, recipient: [seeded.patient, ref(options.owner)] });
  }
  const message = await seedMessage(server, seeded.thread, seeded.patient, ago(options.wroteAgo ?? 10 * MINUTE));
  return { ...seeded, message, owner: options.owner ?? seeded.owner, task: (await server.read<Task>('Task', seeded.task.id)) as OwnedThread['task'] };
}

async function world(options: ServerMockOptions = {}): Promise<ServerMock> {
  return createServerMock(options);
}

describe('what starts a sweep', () => {
  test.each<[string, unknown]>([
    ['a cron run (the server passes the Bot itself)', CRON],
    ['an empty $execute', {}],
    ['no input at all', undefined],
  ])('%s', async (_name, input) => {
    const server = await world();
    await waitingThread(server, { away: true });
    expect(await sweep(server, input)).toMatchObject({ mode: 'sweep', rerouted: 1 });
  });

  test('a message is the event path, not a sweep', async () => {
    const server = await world();
    const { thread, patient } = await waitingThread(server, { away: true });
    const summary = (await handler(server.medplum, botEvent({ ...message(thread, patient), id: 'm' }))) as RerouteSummary;
    expect(summary.mode).toBe('event');
  });
});

describe('the sweep reroutes what the event path would have', () => {
  test('every waiting thread of an away owner goes to the pool, with the same note as the event path; present owners keep theirs', async () => {
    const server = await world();
    const away = await waitingThread(server, { away: true });
    const present = await waitingThread(server);
    const summary = await sweep(server);
    expect(summary).toMatchObject({ tasksScanned: 2, ownersChecked: 2, ownersUnavailable: 1, threadsExamined: 1, rerouted: 1, failed: 0 });
    const moved = await server.read<Task>('Task', away.task.id);
    expect(moved.owner).toBeUndefined();
    expect(moved.status).toBe('requested');
    const lastPatientMessage = (await server.searchAll<Communication>('Communication', `part-of=Communication/${away.thread.id}`))[0];
    expect(moved.note?.[0].text).toContain(`triggered by Communication/${lastPatientMessage.id};`);
    expect((await server.read<Communication>('Communication', away.thread.id)).recipient).toEqual([away.patient]);
    expect((await server.read<Task>('Task', present.task.id)).meta?.versionId).toBe(present.task.meta?.versionId);
  });

  test('one availability check per distinct owner, however many Tasks', async () => {
    const server = await world();
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] }); // not working on Fridays
    for (let i = 0; i < 5; i++) {
      await waitingThread(server, { owner });
    }
    server.resetCounts();
    const summary = await sweep(server);
    expect(summary).toMatchObject({ tasksScanned: 5, ownersChecked: 1, rerouted: 5 });
    expect(server.countByKey()['GET Schedule/:id/$find']).toBe(1);
  });

  test('a thread where the care team spoke last, or where only an auto-acknowledgement followed the patient', async () => {
    const server = await world();
    const answered = await waitingThread(server, { away: true, wroteAgo: 20 * MINUTE });
    await seedMessage(server, answered.thread, ref(await seedPractitioner(server)), ago(5 * MINUTE));
    const autoAcked = await waitingThread(server, { away: true, wroteAgo: 20 * MINUTE });
    await seedMessage(server, autoAcked.thread, { reference: 'Device/auto-ack' }, ago(19 * MINUTE));
    const summary = await sweep(server);
    expect(summary).toMatchObject({ threadsExamined: 2, rerouted: 1, kept: 1 });
    expect((await server.read<Task>('Task', answered.task.id)).owner).toEqual(ref(answered.owner));
    expect((await server.read<Task>('Task', autoAcked.task.id)).owner).toBeUndefined();
  });

  test('a closed thread is left alone, and said so', async () => {
    const server = await world();
    const closed = await waitingThread(server, { away: true });
    await server.update({ ...(await server.read<Communication>('Communication', closed.thread.id)), status: 'completed' });
    expect(await sweep(server)).toMatchObject({ threadsExamined: 0, rerouted: 0 });
    expect((await server.read<Task>('Task', closed.task.id)).owner).toEqual(ref(closed.owner));
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('not in progress (closed or deleted); left alone'))).toBe(true);
  });

  test('an entered-in-error patient message does not make the thread wait', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true, wroteAgo: 30 * MINUTE });
    await seedMessage(server, t.thread, ref(t.owner), ago(20 * MINUTE));
    await seedMessage(server, t.thread, t.patient, ago(10 * MINUTE), { status: 'entered-in-error' });
    expect(await sweep(server)).toMatchObject({ rerouted: 0, kept: 1 });
  });

  test('a half-done reroute (Task moved, header still listing the owner) is finished: no second note', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    // The event path's batch: another run spends the quota meanwhile, so the Task patch applies and
    // the header patch gets a per-entry 429.
    server.beforeRequest = (r) => {
      if (r.key === 'POST batch') {
        server.quota.begin('bot').charge(server.quota.remaining('bot') - 150);
      }
    };
    const event = (await handler(server.medplum, botEvent({ ...message(t.thread, t.patient), id: 'm1' }))) as RerouteSummary;
    expect(event).toMatchObject({ rerouted: 1, outcome: 'deferred', deferred: { quota: 1 } });
    expect((await server.read<Communication>('Communication', t.thread.id)).recipient).toContainEqual(ref(t.owner));
    server.beforeRequest = undefined;

    vi.setSystemTime(new Date(NOW + MINUTE)); // the sweep runs in a later minute
    expect(await sweep(server)).toMatchObject({ rerouted: 0, repaired: 1, failed: 0 });
    expect((await server.read<Communication>('Communication', t.thread.id)).recipient).toEqual([t.patient]);
    expect((await server.read<Task>('Task', t.task.id)).note).toHaveLength(1);
    // Done: a second sweep changes nothing.
    expect(await sweep(server)).toMatchObject({ rerouted: 0, repaired: 0 });
  });

  test('reads every page', async () => {
    const server = await world({ maxPageSize: 20 });
    for (let i = 0; i < 25; i++) {
      await waitingThread(server, { away: true });
    }
    expect(await sweep(server)).toMatchObject({ tasksScanned: 25, rerouted: 25 });
  });
});

describe('quota and deadline', () => {
  test('what the quota left cannot cover is deferred, not failed; the next minute finishes it', async () => {
    const server = await world({ quota: { perCaller: 2_500 } });
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    const threads = [];
    for (let i = 0; i < 12; i++) {
      threads.push(await waitingThread(server, { owner }));
    }
    const first = await sweep(server);
    expect(first.failed).toBe(0);
    expect(first.rerouted).toBeGreaterThan(0);
    expect(first.rerouted + first.deferred.quota).toBe(12);
    expect(first.stoppedEarly).toBe(true);

    for (let minute = 1; minute < 10; minute++) {
      vi.setSystemTime(new Date(NOW + minute * MINUTE));
      const next = await sweep(server);
      expect(next.failed).toBe(0);
      if (!next.deferred.quota) {
        break;
      }
    }
    for (const t of threads) {
      const task = await server.read<Task>('Task', t.task.id);
      expect(task.owner).toBeUndefined();
      expect(task.note).toHaveLength(1);
      expect((await server.read<Communication>('Communication', t.thread.id)).recipient).toEqual([t.patient]);
    }
  });

  test('a 429 while reading ends the sweep early, without failing it', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.faults.push({ match: /^GET Schedule\/.*\$find/, status: 429, times: Infinity });
    expect(await sweep(server)).toMatchObject({ rerouted: 0, failed: 0, stoppedEarly: true });
  });

  test('the deadline near: nothing more is started, the rest deferred', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Communication') {
        vi.setSystemTime(new Date(Date.now() + 50_000)); // reading threads took 50 s of 60
      }
    };
    expect(await sweep(server)).toMatchObject({ rerouted: 0, deferred: { deadline: 1 }, stoppedEarly: true });
  });
});

describe('bad data', () => {
  test('Tasks focused on something else than a thread, and threads without Tasks, are not read', async () => {
    const server = await world();
    await seedThread(server, { status: 'in-progress' });
    const owner = await seedPractitioner(server);
    await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: 'Patient/x' }, owner: ref(owner) });
    expect(await sweep(server)).toMatchObject({ tasksScanned: 0, ownersChecked: 0, threadsExamined: 0 });
  });

  test('an owner without a Schedule is unknown: kept', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    const noSchedule = await seedPractitioner(server);
    await seedTask(server, t.thread, { owner: ref(noSchedule) });
    const summary = await sweep(server);
    expect(summary).toMatchObject({ rerouted: 1, kept: 1 });
  });
});

describe('edges of the sweep and the event path', () => {
  test('the sweep leaves a tenth of the quota it found to the event path', async () => {
    const server = await world({ quota: { perCaller: 3_000 } });
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    for (let i = 0; i < 20; i++) {
      await waitingThread(server, { owner });
    }
    const summary = await sweep(server);
    expect(summary.rerouted).toBeGreaterThan(0);
    expect(summary.deferred.quota).toBeGreaterThan(0);
    // It found about 2,980 after its first page; it stops before spending the last tenth of that.
    expect(server.quota.remaining('bot')).toBeGreaterThanOrEqual(298);
    expect(server.quota.remaining('bot')).toBeLessThan(298 + 200);
  });

  test('a write that keeps failing fails the sweep, with its summary', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.faults.push({ match: /^POST $/, status: 503, times: Infinity });
    const failure = await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' })).catch((err) => err);
    expect(failure.message).toContain('write(s) failed in the sweep; the next sweep retries them');
    expect(failure.summary).toMatchObject({ mode: 'sweep', failed: 2, rerouted: 0 });
  });

  test('the event path: an owner the quota left cannot check is deferred, and nothing is written', async () => {
    const server = await world({ quota: { perCaller: 70 } }); // the Task search (20) leaves 50: a check needs 64
    const t = await waitingThread(server, { away: true });
    const summary = (await handler(server.medplum, botEvent(t.message ?? { ...message(t.thread, t.patient), id: 'm' }))) as RerouteSummary;
    expect(summary).toMatchObject({ outcome: 'deferred', rerouted: 0, deferred: { quota: 1, deadline: 0 } });
    expect(server.countByKey()['GET Schedule/:id/$find']).toBeUndefined();
  });

  test('the sweep: owners the deadline kept from being checked are deferred for it', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Schedule') {
        vi.setSystemTime(new Date(Date.now() + 55_000)); // reading Schedules took 55 s of 60
      }
    };
    expect(await sweep(server)).toMatchObject({ rerouted: 0, ownersChecked: 0, deferred: { deadline: 1, quota: 0 }, stoppedEarly: true });
  });

  test.each(['the owner itself', 'Organization/front-desk'])('OOO_COVERAGE naming %s is ignored, with a warning; the Task goes to the pool', async (cover) => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    const owner = `Practitioner/${t.owner.id}`;
    const summary = await sweep(server, CRON, { OOO_COVERAGE: JSON.stringify({ [owner]: cover === 'the owner itself' ? owner : cover }) });
    expect(summary.rerouted).toBe(1);
    expect((await server.read<Task>('Task', t.task.id)).owner).toBeUndefined();
    const warnings = vi.mocked(console.log).mock.calls.filter((c) => String(c[0]).includes(`OOO_COVERAGE entry for ${owner} is not another Practitioner or PractitionerRole; ignored`));
    expect(warnings).toHaveLength(1);
  });
});

describe('isSweepInput and triage', () => {
  test.each<[unknown, boolean]>([
    [undefined, true],
    [null, true],
    ['', true],
    [{}, true],
    [{ resourceType: 'Bot', id: 'b' }, true],
    [{ resourceType: 'Communication', id: 'c' }, false],
    ['hello', false],
    [{ hello: 'world' }, false],
  ])('%j starts a sweep: %s', (input, expected) => {
    expect(isSweepInput(input)).toBe(expected);
  });

  test('a message without id is ignored, said so', () => {
    const thread = { resourceType: 'Communication', id: 't1', status: 'in-progress' } as Communication;
    expect(triageMessage({ ...message(thread, { reference: 'Patient/p' }), id: undefined })).toEqual({ ignore: 'message has no id', id: undefined });
  });
});

describe('where the sweep stops, and what it says', () => {
  const logLines = (): string[] => vi.mocked(console.log).mock.calls.map((c) => String(c[0]));

  test('the deadline while scanning Tasks: nothing checked or written, said so', async () => {
    const server = await world({ maxPageSize: 20 });
    for (let i = 0; i < 25; i++) {
      await waitingThread(server, { away: true });
    }
    server.resetCounts();
    server.beforeRequest = (r) => {
      if (r.key === 'GET Task') {
        vi.setSystemTime(new Date(Date.now() + 55_000)); // the first page took 55 s of 60
      }
    };
    expect(await sweep(server)).toMatchObject({ stoppedEarly: true, ownersChecked: 0, rerouted: 0 });
    expect(Object.keys(server.countByKey())).toEqual(['GET Task']);
    expect(logLines()).toContain('[ooo-reroute] WARN deadline reached while scanning Tasks; nothing written, the next sweep starts over');
  });

  test('quota enough to check the owner but not to read the threads: every thread deferred for quota', async () => {
    const server = await world({ quota: { perCaller: 120 } });
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    await waitingThread(server, { owner });
    await waitingThread(server, { owner });
    const summary = await sweep(server);
    expect(summary).toMatchObject({ ownersUnavailable: 1, threadsExamined: 0, rerouted: 0, deferred: { quota: 2, deadline: 0 }, stoppedEarly: true });
    expect(server.countByKey()['GET Communication']).toBeUndefined();
    expect(logLines().at(-1)).toBe(
      '[ooo-reroute] sweep: tasks=2 owners=1 unavailable=1 threads=0 rerouted=0 repaired=0 kept=0 conflicts=0 failed=0 deferred={"quota":2,"deadline":0}; the next sweep finishes what is left'
    );
  });

  test('the deadline after checking owners: every thread deferred for the deadline', async () => {
    const server = await world();
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    await waitingThread(server, { owner });
    await waitingThread(server, { owner });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Schedule/:id/$find') {
        vi.setSystemTime(new Date(Date.now() + 55_000));
      }
    };
    expect(await sweep(server)).toMatchObject({ ownersUnavailable: 1, threadsExamined: 0, deferred: { quota: 0, deadline: 2 } });
  });

  test('an owner whose time zone is not an IANA code is unknown in the sweep too: kept, no $find', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    await server.update({ ...(await server.read('Practitioner', t.owner.id as string)), extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'Eastern' }] });
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ ownersChecked: 1, ownersUnavailable: 0, rerouted: 0 });
    expect(server.countByKey()['GET Schedule/:id/$find']).toBeUndefined();
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  });
});

describe('more of what the sweep and the event path must get right', () => {
  test('BOT_TIMEOUT_SECONDS is honoured: a slow $find within a 60 s timeout does not stop the sweep', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Schedule/:id/$find') {
        vi.setSystemTime(new Date(Date.now() + 15_000)); // past the 10 s default, well within 60 s
      }
    };
    expect(await sweep(server)).toMatchObject({ rerouted: 1, stoppedEarly: false });
  });

  test('a Task changed between the sweep reading it and writing it is a conflict, decided again next time', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    server.beforeRequest = async (r) => {
      if (r.key === 'POST batch') {
        server.beforeRequest = undefined;
        await server.update({ ...(await server.read<Task>('Task', t.task.id)), description: 'edited meanwhile' });
      }
    };
    expect(await sweep(server)).toMatchObject({ rerouted: 0, conflicts: 1, failed: 0 });
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain(`[ooo-reroute] Task/${t.task.id} changed meanwhile; decided again next time`);
    expect(await sweep(server)).toMatchObject({ rerouted: 1, conflicts: 0 });
  });

  test('closed Tasks are not scanned; each owner is judged by their own Schedule', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    const present = await seedPractitioner(server);
    await seedSchedule(server, [ref(present)]);
    const kept = await seedTask(server, t.thread, { owner: ref(present) });
    await seedTask(server, t.thread, { owner: ref(t.owner), status: 'completed' });
    expect(await sweep(server)).toMatchObject({ tasksScanned: 2, ownersChecked: 2, ownersUnavailable: 1, rerouted: 1, kept: 1 });
    expect((await server.read<Task>('Task', kept.id)).owner).toEqual(ref(present));
    // The event path reads Schedules through its includes: the same judgement.
    const t2 = await waitingThread(server, { away: true });
    const kept2 = await seedTask(server, t2.thread, { owner: ref(present) });
    const summary = (await handler(server.medplum, botEvent(t2.message))) as RerouteSummary;
    expect(summary).toMatchObject({ rerouted: 1, kept: 1 });
    expect((await server.read<Task>('Task', kept2.id)).owner).toEqual(ref(present));
  });
});

describe('how the sweep reads threads', () => {
  test('a header the patient wrote is the first message; a header nobody wrote, with no messages, waits on nobody', async () => {
    const server = await world();
    const fromPatient = await seedOwnedThread(server, { away: true });
    await server.update({ ...(await server.read<Communication>('Communication', fromPatient.thread.id)), sender: fromPatient.patient, sent: ago(30 * MINUTE) });
    const silent = await seedOwnedThread(server, { away: true });
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ threadsExamined: 2, rerouted: 1, kept: 1 });
    expect((await server.read<Task>('Task', fromPatient.task.id)).owner).toBeUndefined();
    expect((await server.read<Task>('Task', silent.task.id)).owner).toEqual(ref(silent.owner));
    // Messages are read without their text.
    const messageSearch = server.requests.find((r) => r.key === 'GET Communication' && r.url.includes('part-of'));
    expect(new URL(messageSearch?.url as string, 'http://x').searchParams.get('_elements')).toBe('partOf,sender,sent,status');
  });

  test('only closed threads: no message search, and the count of threads left alone', async () => {
    const server = await world();
    for (let i = 0; i < 2; i++) {
      const closed = await waitingThread(server, { away: true });
      await server.update({ ...(await server.read<Communication>('Communication', closed.thread.id)), status: 'completed' });
    }
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ threadsExamined: 0, rerouted: 0 });
    expect(server.countByKey()['GET Communication']).toBe(1);
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain('[ooo-reroute] sweep: 2 thread(s) with open Tasks are not in progress (closed or deleted); left alone');
  });

  test('one closed thread beside an open one: counted as one; a sweep with none closed says nothing of it', async () => {
    const server = await world();
    const closed = await waitingThread(server, { away: true });
    await server.update({ ...(await server.read<Communication>('Communication', closed.thread.id)), status: 'completed' });
    await waitingThread(server, { away: true });
    expect(await sweep(server)).toMatchObject({ threadsExamined: 1, rerouted: 1 });
    const lines = (): string[] => vi.mocked(console.log).mock.calls.map((c) => String(c[0]));
    expect(lines()).toContain('[ooo-reroute] sweep: 1 thread(s) with open Tasks are not in progress (closed or deleted); left alone');
    vi.mocked(console.log).mockClear();
    const other = await world();
    await waitingThread(other, { away: true });
    await sweep(other);
    expect(lines().filter((l) => l.includes('not in progress'))).toEqual([]);
  });

  test('a message listed in two threads counts in the one the sweep reads', async () => {
    const server = await world();
    const t = await seedOwnedThread(server, { away: true });
    await server.seed({ resourceType: 'Communication', status: 'in-progress', partOf: [{ reference: 'Communication/elsewhere' }, ref(t.thread)], sender: t.patient, sent: ago(MINUTE) });
    expect(await sweep(server)).toMatchObject({ threadsExamined: 1, rerouted: 1 });
  });
});
