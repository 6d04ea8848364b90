// Issue #28, invariant 6 (`throttled`): every read of the event path (the Task search, the thread's
// header and conversation, the owners' Schedules and absences, a Task's history) is sent only when
// the quota the last response announced (RateLimit) covers it; one guard per run
// (src/lib/read-guard.ts) is asked before each. Short of it the event stops cleanly, logged with its
// ids and `deferred: quota` (a failed Subscription run is never retried), and the sweep,
// level-triggered, does the work in its next run with quota. As in the simulation's seed 1, 30 days,
// step 8958 (the event of m3002 sent its message search with 9 points left alongside a sweep).
import type { WithId } from '@medplum/core';
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import { OOO_BOT_NAME, REROUTE_RECORD_URL } from '../../src/lib/reroute-plan';
import type { RerouteSummary, SweepSummary } from '../../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { burstAfter, refusedForQuota } from '../harness/quota-burst';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const OFF = { BOT_TIMEOUT_SECONDS: '60' };
const at = (minutesAgo: number): string => new Date(NOW - minutesAgo * MINUTE).toISOString();
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

async function event(server: ServerMock, message: Communication, secrets: Record<string, string> = ON): Promise<RerouteSummary> {
  return (await handler(server.medplum, botEvent(message, secrets))) as RerouteSummary;
}

async function sweep(server: ServerMock, secrets: Record<string, string>): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, secrets))) as SweepSummary;
}

const refused = refusedForQuota;
const logged = (): string[] => vi.mocked(console.log).mock.calls.map((args) => args.map(String).join(' '));

describe('the event path', () => {
  test('9 points left after its Task search: the conversation read is not sent, the event stops deferred (logged), and the next sweep opens the Task', async () => {
    const server = createServerMock();
    const drB = ref(await seedPractitioner(server));
    await seedSchedule(server, [drB]);
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
    const message = await seedMessage(server, thread, patient, new Date(NOW - 1_000).toISOString());

    burstAfter(server, (r) => r.key === 'GET Task', 9);
    const summary = await event(server, message);
    expect(refused(server)).toEqual([]);
    // The header (no Task brought it) costs 1 point and is read; the message search (20) is not sent.
    expect(server.requests.filter((r) => r.caller === DEFAULT_CALLER).map((r) => r.key)).toEqual(['GET Task', 'GET Communication/:id']);
    expect(summary).toMatchObject({ outcome: 'deferred', deferred: { quota: 1, deadline: 0 }, opened: 0, failed: 0, reason: 'deferred: quota (conversation read not sent)' });
    expect(logged()).toContainEqual(expect.stringContaining(`Communication/${thread.id} Communication/${message.id}: deferred: quota (conversation read not sent); the sweep does the work`));

    // The sweep, 15 minutes later, has its quota: its recent-message scan finds the thread.
    vi.setSystemTime(NOW + 15 * MINUTE);
    expect(await sweep(server, ON)).toMatchObject({ stoppedEarly: false, opened: 1, failed: 0 });
    const tasks = await server.searchAll<Task>('Task', `focus=Communication/${thread.id}`);
    expect(tasks.map((t) => t.status)).toEqual(['requested']);
    expect(refused(server)).toEqual([]);
  });

  test('control: with its quota, the same event opens the Task itself', async () => {
    const server = createServerMock();
    const drB = ref(await seedPractitioner(server));
    await seedSchedule(server, [drB]);
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
    const message = await seedMessage(server, thread, patient, new Date(NOW - 1_000).toISOString());
    expect(await event(server, message)).toMatchObject({ outcome: 'done', opened: 1 });
  });
});


describe("a Task's history", () => {
  test('9 points left after the absence read: the history (10) is not read, the event stops deferred instead of deciding without it, and the next sweep keeps the person\'s choice', async () => {
    // Dr A away all week; the bot sent the Task to the pool 7 hours ago; the care team replied; the
    // patient wrote again 3 hours ago (its copy comes late); a person gave the Task to Dr A 3 minutes
    // ago, which only the Task's history can tell.
    const server = createServerMock();
    const pool = { time: at(420), authorString: OOO_BOT_NAME, text: 'Returned to the team pool.', extension: [{ url: REROUTE_RECORD_URL, extension: [{ url: 'reason', valueCode: 'absent' }] }] };
    const t = await seedOwnedThread(server, { away: true, task: { owner: undefined, status: 'requested', authoredOn: at(420), note: [pool], meta: { lastUpdated: at(420) } } });
    const colleague = ref(await seedPractitioner(server));
    await seedMessage(server, t.thread, t.patient, at(425));
    await seedMessage(server, t.thread, colleague, at(300));
    const latest = await seedMessage(server, t.thread, t.patient, at(180));
    const task = await server.read<WithId<Task>>('Task', t.task.id);
    await server.seedVersion<WithId<Task>>({ ...task, owner: ref(t.owner), meta: { lastUpdated: at(3) } });

    burstAfter(server, (r) => r.key === 'GET Slot', 9);
    const summary = await event(server, latest, OFF);
    expect(refused(server)).toEqual([]);
    expect(server.requests.filter((r) => r.path.endsWith('/_history'))).toEqual([]);
    expect(summary).toMatchObject({ outcome: 'deferred', deferred: { quota: 1, deadline: 0 }, rerouted: 0, failed: 0, reason: 'deferred: quota (Task history read not sent)' });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));

    vi.setSystemTime(NOW + 15 * MINUTE);
    expect(await sweep(server, OFF)).toMatchObject({ stoppedEarly: false, rerouted: 0, failed: 0 });
    expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(ref(t.owner));
    expect(server.requests.filter((r) => r.path.endsWith('/_history')).length).toBe(1);
  });
});
