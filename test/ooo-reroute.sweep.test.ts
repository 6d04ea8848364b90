// The out-of-office sweep: the same bot on a cron run (input: the Bot) or an empty $execute,
// reconciling what the event path should have done.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, isSweepInput, triageMessage } from '../src/ooo-reroute';
import { latestReroute } from '../src/lib/reroute-plan';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent, message, ref, seedBlock, seedMessage, seedOwnedThread, seedPractitioner, seedSchedule, seedTask, seedThread } from './harness/fixtures';
import type { OwnedThread } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import type { ServerMock, ServerMockOptions } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
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
  const wroteAgo = options.wroteAgo ?? 10 * MINUTE;
  // With another owner, the Task is stored before the patient wrote, as its history would say.
  const stored = options.owner ? { task: { meta: { lastUpdated: ago(wroteAgo + MINUTE) } } } : {};
  const seeded = await seedOwnedThread(server, { away: options.away, ...stored });
  if (options.owner) {
    // Assigned when the Task was made, before the patient wrote (keeping its lastUpdated).
    await server.seedVersion({ ...seeded.task, owner: ref(options.owner) });
    await server.update({ ...seeded.thread, recipient: [seeded.patient, ref(options.owner)] });
  }
  const message = await seedMessage(server, seeded.thread, seeded.patient, ago(wroteAgo));
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
    expect(summary).toMatchObject({ tasksScanned: 2, threadsRead: 2, waiting: 2, ownersChecked: 2, ownersUnavailable: 1, rerouted: 1, failed: 0 });
    const moved = await server.read<Task>('Task', away.task.id);
    expect(moved.owner).toBeUndefined();
    expect(moved.status).toBe('requested');
    const lastPatientMessage = (await server.searchAll<Communication>('Communication', `part-of=Communication/${away.thread.id}`))[0];
    expect(latestReroute(moved)?.trigger).toBe(`Communication/${lastPatientMessage.id}`);
    expect(moved.note?.[0].text).toBe('Returned to the team pool: Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
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
    expect(server.countByKey()).toMatchObject({ 'GET Schedule': 1, 'GET Slot': 1 });
  });

  test('a thread where the care team spoke last, or where only an auto-acknowledgement followed the patient', async () => {
    const server = await world();
    const answered = await waitingThread(server, { away: true, wroteAgo: 20 * MINUTE });
    await seedMessage(server, answered.thread, ref(await seedPractitioner(server)), ago(5 * MINUTE));
    const autoAcked = await waitingThread(server, { away: true, wroteAgo: 20 * MINUTE });
    await seedMessage(server, autoAcked.thread, { reference: 'Device/auto-ack' }, ago(19 * MINUTE));
    const summary = await sweep(server);
    expect(summary).toMatchObject({ threadsRead: 2, waiting: 1, rerouted: 1 });
    expect((await server.read<Task>('Task', answered.task.id)).owner).toEqual(ref(answered.owner));
    expect((await server.read<Task>('Task', autoAcked.task.id)).owner).toBeUndefined();
  });

  test('a closed thread is left alone, and said so', async () => {
    const server = await world();
    const closed = await waitingThread(server, { away: true });
    await server.update({ ...(await server.read<Communication>('Communication', closed.thread.id)), status: 'completed' });
    expect(await sweep(server)).toMatchObject({ threadsRead: 1, waiting: 0, rerouted: 0 });
    expect((await server.read<Task>('Task', closed.task.id)).owner).toEqual(ref(closed.owner));
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('not in progress (closed or deleted); left alone'))).toBe(true);
  });

  test('an entered-in-error patient message does not make the thread wait', async () => {
    const server = await world();
    const t = await waitingThread(server, { away: true, wroteAgo: 30 * MINUTE });
    await seedMessage(server, t.thread, ref(t.owner), ago(20 * MINUTE));
    await seedMessage(server, t.thread, t.patient, ago(10 * MINUTE), { status: 'entered-in-error' });
    expect(await sweep(server)).toMatchObject({ threadsRead: 1, waiting: 0, rerouted: 0 });
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
    // Away (a vacation block): each thread costs a Task and a header write.
    await seedBlock(server, await seedSchedule(server, [ref(owner)]), new Date(NOW - DAY).toISOString(), new Date(NOW + DAY).toISOString());
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
    server.faults.push({ match: /^GET Slot/, status: 429, times: Infinity });
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
    expect(await sweep(server)).toMatchObject({ tasksScanned: 0, ownersChecked: 0, threadsRead: 0 });
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
    await seedBlock(server, await seedSchedule(server, [ref(owner)]), new Date(NOW - DAY).toISOString(), new Date(NOW + DAY).toISOString());
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
    const server = await world({ quota: { perCaller: 55 } }); // the Task search (20) leaves 35: the Slot search needs 40
    const t = await waitingThread(server, { away: true });
    const summary = (await handler(server.medplum, botEvent(t.message ?? { ...message(t.thread, t.patient), id: 'm' }))) as RerouteSummary;
    expect(summary).toMatchObject({ outcome: 'deferred', rerouted: 0, deferred: { quota: 1, deadline: 0 } });
    expect(server.countByKey()).toEqual({ 'GET Task': 1 });
    expect((await server.read<Task>('Task', t.task.id)).meta?.versionId).toBe(t.task.meta?.versionId);
  });

  test('the sweep: owners the deadline kept from being checked are deferred for it', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Communication' && r.url.includes('part-of')) {
        vi.setSystemTime(new Date(Date.now() + 55_000)); // reading messages took 55 s of 60
      }
    };
    expect(await sweep(server)).toMatchObject({ rerouted: 0, ownersChecked: 0, deferred: { deadline: 1, quota: 0 }, stoppedEarly: true });
    expect(server.countByKey()['GET Schedule']).toBeUndefined();
  });

  test.each(['the owner itself', 'Organization/front-desk'])('OOO_COVERAGE naming %s is refused, with a warning; the Task goes to the pool', async (cover) => {
    const server = await world();
    const t = await waitingThread(server, { away: true });
    const owner = `Practitioner/${t.owner.id}`;
    const summary = await sweep(server, CRON, { OOO_COVERAGE: JSON.stringify({ [owner]: cover === 'the owner itself' ? owner : cover }) });
    expect(summary.rerouted).toBe(1);
    expect((await server.read<Task>('Task', t.task.id)).owner).toBeUndefined();
    const warnings = vi.mocked(console.log).mock.calls.filter((c) => String(c[0]).includes(`secret OOO_COVERAGE: entry "${owner}" must map a Practitioner or PractitionerRole reference to another one`));
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
    expect(logLines()).toContain('[ooo-reroute] WARN sweep stopped early (deadline) while scanning Tasks; nothing written, the next sweep starts over');
  });

  test('quota enough to read the threads but not their owners: every waiting thread deferred for quota', async () => {
    // The scan (20) leaves 70, a tenth of it kept back; the threads (40) leave 30: the owners need 40 + 7.
    const server = await world({ quota: { perCaller: 90 } });
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    await waitingThread(server, { owner });
    await waitingThread(server, { owner });
    const summary = await sweep(server);
    expect(summary).toMatchObject({ threadsRead: 2, waiting: 2, ownersChecked: 0, rerouted: 0, deferred: { quota: 2, deadline: 0 }, stoppedEarly: true });
    expect(server.countByKey()['GET Schedule']).toBeUndefined();
    expect(logLines().slice(-2)).toEqual([
      '[ooo-reroute] WARN sweep stopped early (quota): 2 thread(s) left; the next sweep starts elsewhere and finishes them',
      '[ooo-reroute] sweep: tasks=2 threads=2 waiting=2 owners=0 unavailable=0 rerouted=0 repaired=0 kept=0 keptOnDuty=0 conflicts=0 failed=0 deferred={"quota":2,"deadline":0}',
    ]);
  });

  test('the deadline after checking owners: every thread deferred for the deadline', async () => {
    const server = await world();
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    await waitingThread(server, { owner });
    await waitingThread(server, { owner });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Slot') {
        vi.setSystemTime(new Date(Date.now() + 55_000));
      }
    };
    expect(await sweep(server)).toMatchObject({ ownersUnavailable: 1, rerouted: 0, deferred: { quota: 0, deadline: 2 } });
  });

  test('an owner whose time zone is not an IANA code is unknown in the sweep too: kept', async () => {
    const server = await world();
    const owner = await seedPractitioner(server);
    await seedSchedule(server, [ref(owner)], { availability: [{ days: ['mon'] }] });
    const t = await waitingThread(server, { owner });
    await server.update({ ...(await server.read('Practitioner', t.owner.id as string)), extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/timezone', valueCode: 'Eastern' }] });
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ ownersChecked: 1, ownersUnavailable: 0, rerouted: 0 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  });
});

describe('more of what the sweep and the event path must get right', () => {
  test('BOT_TIMEOUT_SECONDS is honoured: a slow Slot search within a 60 s timeout does not stop the sweep', async () => {
    const server = await world();
    await waitingThread(server, { away: true });
    server.beforeRequest = (r) => {
      if (r.key === 'GET Slot') {
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
    expect(await sweep(server)).toMatchObject({ threadsRead: 2, waiting: 1, rerouted: 1 });
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
    expect(await sweep(server)).toMatchObject({ threadsRead: 2, waiting: 0, rerouted: 0 });
    expect(server.countByKey()['GET Communication']).toBe(1);
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContain('[ooo-reroute] sweep: 2 thread(s) with open Tasks are not in progress (closed or deleted); left alone');
  });

  test('one closed thread beside an open one: counted as one; a sweep with none closed says nothing of it', async () => {
    const server = await world();
    const closed = await waitingThread(server, { away: true });
    await server.update({ ...(await server.read<Communication>('Communication', closed.thread.id)), status: 'completed' });
    await waitingThread(server, { away: true });
    expect(await sweep(server)).toMatchObject({ threadsRead: 2, waiting: 1, rerouted: 1 });
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
    expect(await sweep(server)).toMatchObject({ waiting: 1, rerouted: 1 });
  });
});

describe('the sweep replays the event at the time of the message; only an absence hands off', () => {
  const EVENING = Date.parse('2026-11-27T22:15:00.000Z'); // 17:15 in New York: the 09:00-17:00 shift ended at 17:00
  const nyTime = (hhmm: string): string => new Date(Date.parse(`2026-11-27T${hhmm}:00-05:00`)).toISOString();

  async function threadAt(server: ServerMock, wrote: string): Promise<OwnedThread> {
    const seeded = await seedOwnedThread(server);
    await seedMessage(server, seeded.thread, seeded.patient, nyTime(wrote));
    return seeded;
  }

  test('the end of a shift hands nothing off: a patient who wrote at 16:00 stays with the owner at 17:15, counted', async () => {
    const server = await world();
    const t = await threadAt(server, '16:00');
    vi.setSystemTime(new Date(EVENING));
    const summary = await sweep(server);
    expect(summary).toMatchObject({ waiting: 1, ownersUnavailable: 1, rerouted: 0, kept: 1, keptOnDuty: 1 });
    expect((await server.read<Task>('Task', t.task.id)).meta?.versionId).toBe(t.task.meta?.versionId);
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining('keptOnDuty=1'));
  });

  test('a message written after the shift ended whose event was lost is rerouted, the note saying when the patient wrote', async () => {
    const server = await world();
    const t = await threadAt(server, '17:05');
    vi.setSystemTime(new Date(EVENING));
    expect(await sweep(server)).toMatchObject({ rerouted: 1, keptOnDuty: 0 });
    const task = await server.read<Task>('Task', t.task.id);
    expect(task.owner).toBeUndefined();
    expect(task.note?.[0].text).toBe(
      'Returned to the team pool: Pat PHI-PRACTITIONER-NAME was outside their working hours when the patient wrote (Nov 27, 2026, 5:05 PM (America/New_York)).'
    );
  });

  test('a vacation that began after the patient wrote hands off every waiting thread', async () => {
    const server = await world();
    const t = await threadAt(server, '16:00');
    const second = await seedTask(server, t.thread, { owner: ref(t.owner) });
    await seedBlock(server, t.schedule, nyTime('17:10'), '2026-12-04T00:00:00Z');
    vi.setSystemTime(new Date(EVENING));
    expect(await sweep(server)).toMatchObject({ rerouted: 2, keptOnDuty: 0 });
    for (const id of [t.task.id, second.id]) {
      expect((await server.read<Task>('Task', id)).note?.[0].text).toBe('Returned to the team pool: Pat PHI-PRACTITIONER-NAME is away (vacation or leave on their schedule).');
    }
  });

  test('the event path and the sweep agree on a message written on shift and delivered late', async () => {
    const server = await world();
    const t = await threadAt(server, '16:00');
    vi.setSystemTime(new Date(EVENING));
    const [late] = await server.searchAll<Communication>('Communication', `part-of=Communication/${t.thread.id}`);
    const event = (await handler(server.medplum, botEvent(late))) as RerouteSummary;
    expect(event.decisions[0]).toMatchObject({ action: 'kept', onDutyWhenWritten: true });
  });
});

describe('reach follows the waiting threads, not the scan order', () => {
  test('120 on-duty owners with answered threads and one away owner whose patient waits: rerouted in one run at 100 ms a request and the default 10 s timeout', async () => {
    const server = await world();
    const answerer = ref(await seedPractitioner(server));
    for (let i = 0; i < 120; i++) {
      const t = await seedOwnedThread(server);
      await seedMessage(server, t.thread, t.patient, ago(30 * MINUTE));
      await seedMessage(server, t.thread, answerer, ago(20 * MINUTE));
    }
    const away = await waitingThread(server, { away: true });
    server.resetCounts();
    server.beforeRequest = () => {
      vi.setSystemTime(new Date(Date.now() + 100)); // a loaded server: 100 ms a request
    };
    const summary = (await handler(server.medplum, botEvent(CRON))) as SweepSummary; // no BOT_TIMEOUT_SECONDS: 10 s
    expect(summary).toMatchObject({ tasksScanned: 121, threadsRead: 121, waiting: 1, ownersChecked: 1, rerouted: 1, stoppedEarly: false });
    expect((await server.read<Task>('Task', away.task.id)).owner).toBeUndefined();
    // Owners are read only for waiting threads: one Schedule search, one Slot search.
    expect(server.countByKey()).toMatchObject({ 'GET Schedule': 1, 'GET Slot': 1 });
  });

  test('a sweep stopped by its deadline says so, and a later one starts elsewhere and reaches the rest', async () => {
    const server = await world();
    const answerer = ref(await seedPractitioner(server));
    for (let i = 0; i < 200; i++) {
      const t = await seedOwnedThread(server);
      await seedMessage(server, t.thread, t.patient, ago(30 * MINUTE));
      await seedMessage(server, t.thread, answerer, ago(20 * MINUTE));
    }
    const away = await waitingThread(server, { away: true }); // scanned last: in the third chunk of 100
    server.beforeRequest = () => {
      vi.setSystemTime(new Date(Date.now() + 1_000)); // 1 s a request: a 10 s run reads about three chunks
    };
    const runs: SweepSummary[] = [];
    for (let minute = 0; minute < 3 && (await server.read<Task>('Task', away.task.id)).owner; minute++) {
      vi.setSystemTime(new Date(NOW + minute * MINUTE));
      runs.push((await handler(server.medplum, botEvent(CRON))) as SweepSummary);
    }
    expect((await server.read<Task>('Task', away.task.id)).owner).toBeUndefined();
    expect(runs.some((r) => r.stoppedEarly)).toBe(true);
    expect(runs.filter((r) => r.rerouted).length).toBe(1);
    expect(vi.mocked(console.log).mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringMatching(/^\[ooo-reroute\] WARN sweep stopped early \(deadline\): \d+ thread\(s\) left; the next sweep starts elsewhere and finishes them$/)
    );
  });
});

test('a person who gives a rerouted Task back to its absent owner is not overruled for the same message; a new message moves it again', async () => {
  const server = createServerMock();
  const t = await waitingThread(server, { away: true });
  expect(await sweep(server)).toMatchObject({ rerouted: 1 });
  await server.update({ ...(await server.read<Task>('Task', t.task.id)), owner: ref(t.owner) }); // a nurse hands it back
  expect(await sweep(server)).toMatchObject({ rerouted: 0, kept: 1 });
  expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
  // The patient writes again after the hand-back (two minutes later).
  vi.setSystemTime(new Date(NOW + 2 * MINUTE));
  const again = await seedMessage(server, t.thread, t.patient, ago(-MINUTE));
  expect(await handler(server.medplum, botEvent(again))).toMatchObject({ rerouted: 1 });
});

test('a person who assigns a waiting patient\'s Task to a colleague off shift is not overruled for that message, by the event path or the sweep', async () => {
  const server = createServerMock();
  // The lifecycle opened the Task for an on-shift nurse; the patient is still waiting.
  const t = await waitingThread(server);
  const offShift = await seedPractitioner(server);
  await seedSchedule(server, [ref(offShift)], { availability: [{ days: ['mon'] }] });
  const routed = { authorString: 'ooo-reroute', time: new Date(NOW - 9 * MINUTE).toISOString(), text: 'Assigned to the nurse.', extension: [{ url: 'urn:medplum-messaging-bots:response-route', extension: [{ url: 'to', valueReference: ref(t.owner) }, { url: 'reason', valueCode: 'recipient' }] }] };
  await server.seedVersion({ ...t.task, note: [routed] });
  // Five minutes after the patient wrote, a person hands it to a colleague who is off shift.
  await server.update({ ...(await server.read<Task>('Task', t.task.id)), owner: ref(offShift) });
  const kept = await sweep(server);
  expect(kept).toMatchObject({ rerouted: 0 });
  expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(offShift));
  expect((await handler(server.medplum, botEvent(t.message))) as RerouteSummary).toMatchObject({ rerouted: 0 });
  expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(offShift));
  // The patient writes again: decided by availability, the off-shift colleague's Task goes to the pool.
  vi.setSystemTime(new Date(NOW + 2 * MINUTE));
  const again = await seedMessage(server, t.thread, t.patient, ago(-MINUTE));
  expect(await handler(server.medplum, botEvent(again))).toMatchObject({ rerouted: 1 });
});
