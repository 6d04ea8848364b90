import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { EPISODE_SYSTEM, handler, planStaleRun } from '../src/stale-thread-reminders';
import type { StaleConfig, StaleFacts, StaleSummary } from '../src/stale-thread-reminders';
import { RunFailedError } from '../src/lib/bot-runtime';
import { WALL_CLOCK } from '../src/lib/business-hours';
import {
  botEvent,
  PHI_MARKER,
  ref,
  REMINDER_CODE,
  REMINDER_SEARCH,
  seedClinic,
  seedMessage,
  seedPatient,
  seedPractitioner,
  seedTask,
  seedThread,
} from './harness/fixtures';
import type { Ref } from './harness/fixtures';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { createServerMock } from './harness/server-mock';
import type { ServerMock, ServerMockOptions } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

const cron = (secrets: Record<string, string> = {}): ReturnType<typeof botEvent> => botEvent({}, secrets);

interface World {
  server: ServerMock;
  patient: Ref;
  provider: Ref;
}

async function world(options: ServerMockOptions = {}): Promise<World> {
  const server = createServerMock(options);
  return { server, patient: ref(await seedPatient(server)), provider: ref(await seedPractitioner(server)) };
}

/**
 * A thread opened 30 days ago (a header without sender: no message of its own), whose patient wrote
 * `silence` ago: waiting since then. (A header the patient wrote would be the first unanswered message.)
 */
async function staleThread(w: World, silence = 5 * DAY, fields: Partial<Communication> = {}): Promise<Communication & { id: string }> {
  const opened = ago(30 * DAY + silence); // distinct per thread, as real creation times are
  const thread = await seedThread(w.server, { subject: w.patient, sent: opened, meta: { lastUpdated: opened }, ...fields });
  await seedMessage(w.server, thread, w.patient, ago(silence));
  return thread;
}

async function reminders(w: World, thread?: Communication): Promise<Task[]> {
  const all = await w.server.searchAll<Task>('Task', REMINDER_SEARCH);
  return thread ? all.filter((t) => t.focus?.reference === `Communication/${thread.id}`) : all;
}

useFixedTimeAndQuietConsole(NOW);

describe('which threads are stale', () => {
  test('reads every page: 45 stale threads on a server with 20-result pages get 45 reminders', async () => {
    const w = await world({ maxPageSize: 20 });
    for (let i = 0; i < 45; i++) {
      await staleThread(w, 5 * DAY + i * 1000);
    }
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ threadsRead: 45, stale: 45, created: 45 });
    expect(await reminders(w)).toHaveLength(45);
    expect(w.server.countByKey()['GET Communication']).toBeGreaterThanOrEqual(6);
  });

  test('threads imported in bulk (one shared lastUpdated) are still all read, with offset paging', async () => {
    const w = await world({ maxPageSize: 20 });
    for (let i = 0; i < 45; i++) {
      await staleThread(w, 5 * DAY + i * 1000, { meta: { lastUpdated: ago(30 * DAY) } });
    }
    expect((await handler(w.server.medplum, cron())).created).toBe(45);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('offset paging'))).toBe(true);
  });

  test('the reminder: urgent, requested, focused on the thread, for the subject, with an episode identifier and no text', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await handler(w.server.medplum, cron());
    const [reminder] = await reminders(w, thread);
    expect(reminder).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'urgent',
      code: { coding: [REMINDER_CODE] },
      focus: { reference: `Communication/${thread.id}` },
      for: w.patient,
      authoredOn: new Date(NOW).toISOString(),
    });
    expect(reminder.owner).toBeUndefined();
    expect(reminder.identifier?.[0]).toMatchObject({ system: EPISODE_SYSTEM, value: expect.stringMatching(new RegExp(`^${thread.id}:`)) });
    expect(reminder.description).toBe(
      `Patient message ${reminder.description?.split(' ')[2]} unanswered for 5d 0h (default rule: after 72 hours, escalate every 24, reminder urgent).`
    );
    expect(JSON.stringify(reminder)).not.toContain(PHI_MARKER);
  });

  test('the reminder goes to the owner of the open response Task', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await seedTask(w.server, thread, { owner: w.provider });
    await handler(w.server.medplum, cron());
    expect((await reminders(w, thread))[0].owner).toEqual(w.provider);
  });

  test('a fresh thread, and an old thread with a message yesterday, are not stale', async () => {
    const w = await world();
    await seedThread(w.server, { subject: w.patient, sender: w.patient, sent: ago(2 * HOUR), meta: { lastUpdated: ago(2 * HOUR) } });
    await staleThread(w, DAY);
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ threadsRead: 2, stale: 0, created: 0, skipped: { recent: 2 } });
  });

  test('a thread with no messages whose header is old counts from the header', async () => {
    const w = await world();
    await seedThread(w.server, { subject: w.patient, sender: w.patient, sent: ago(4 * DAY), meta: { lastUpdated: ago(4 * DAY) } });
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
  });

  test('a patient message read yesterday (newer received and lastUpdated) but unanswered is still stale', async () => {
    const w = await world();
    const thread = await seedThread(w.server, { subject: w.patient, meta: { lastUpdated: ago(30 * DAY) } });
    await seedMessage(w.server, thread, w.patient, ago(5 * DAY), { received: ago(DAY), meta: { lastUpdated: ago(DAY) } });
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
  });

  test('a message without sent counts from meta.lastUpdated', async () => {
    const w = await world();
    const thread = await seedThread(w.server, { subject: w.patient, meta: { lastUpdated: ago(30 * DAY) } });
    await seedMessage(w.server, thread, w.patient, ago(5 * DAY), { sent: undefined });
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
  });

  test('when the care team spoke last, the thread waits on the patient', async () => {
    const w = await world();
    const thread = await staleThread(w, 6 * DAY);
    await seedMessage(w.server, thread, w.provider, ago(5 * DAY));
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ created: 0, skipped: { careTeamLast: 1 } });
  });

  test('a thread without subject is skipped and counted', async () => {
    const w = await world();
    await staleThread(w, 5 * DAY, { subject: undefined });
    expect((await handler(w.server.medplum, cron())).skipped.noSubject).toBe(1);
  });

  test('closed threads are not read', async () => {
    const w = await world();
    await staleThread(w, 5 * DAY, { status: 'completed' });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ threadsRead: 0, created: 0 });
  });

  test('STALE_AFTER_HOURS sets the threshold; a malformed value falls back to 72 with a warning', async () => {
    const w = await world();
    await staleThread(w, 30 * HOUR);
    expect((await handler(w.server.medplum, cron({ STALE_AFTER_HOURS: 'three days' }))).created).toBe(0);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('STALE_AFTER_HOURS'))).toBe(true);
    expect((await handler(w.server.medplum, cron({ STALE_AFTER_HOURS: '24' }))).created).toBe(1);
  });
});

describe('bad input: a clear counted outcome, never a corrupted resource', () => {
  test.each<[string, unknown]>([
    ['a Patient', { resourceType: 'Patient', id: 'x' }],
    ['a string', 'hello'],
    ['nothing', undefined],
  ])('event.input of another kind (%s) is ignored', async (_name, input) => {
    const w = await world();
    await staleThread(w);
    expect(await handler(w.server.medplum, botEvent(input))).toMatchObject({ threadsRead: 1, created: 1, failed: 0 });
  });

  test('a message without sender decides nothing and is counted', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await seedMessage(w.server, thread, w.patient, ago(4 * DAY), { sender: undefined });
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ ignoredMessages: 1, created: 1 });
    expect((await reminders(w, thread))[0].description).toContain('unanswered for 5d');
  });

  test('a message whose thread header is missing or closed is not read as a thread', async () => {
    const w = await world();
    const closed = await staleThread(w, 5 * DAY, { status: 'completed' });
    await seedMessage(w.server, { ...closed, id: 'missing' }, w.patient, ago(5 * DAY));
    expect(await handler(w.server.medplum, cron())).toMatchObject({ threadsRead: 0, created: 0, failed: 0 });
  });

  test('malformed secrets: defaults, one warning each', async () => {
    const w = await world();
    await staleThread(w);
    const summary = await handler(w.server.medplum, cron({ STALE_AFTER_HOURS: '-1', ESCALATE_AFTER_HOURS: 'x', BOT_TIMEOUT_SECONDS: '' }));
    expect(summary.created).toBe(1);
    const warnings = vi.mocked(console.log).mock.calls.map((c) => String(c[0])).filter((l) => l.includes('WARN secret'));
    expect(warnings).toEqual([
      '[stale-thread-reminders] WARN secret STALE_AFTER_HOURS is not a positive number; using default 72',
      '[stale-thread-reminders] WARN secret ESCALATE_AFTER_HOURS is not a positive number; using default 24',
    ]);
  });
});

describe('one reminder per silence', () => {
  test('two runs in a row create one reminder', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await handler(w.server.medplum, cron());
    const second = await handler(w.server.medplum, cron());
    expect(second).toMatchObject({ created: 0, alreadyReminded: 1 });
    expect(await reminders(w, thread)).toHaveLength(1);
  });

  test('two overlapping runs create one reminder per thread', async () => {
    const w = await world();
    const threads = [await staleThread(w), await staleThread(w, 4 * DAY), await staleThread(w, 6 * DAY)];
    const [a, b] = await Promise.all([handler(w.server.medplum, cron()), handler(w.server.medplum, cron())]);
    expect(a.created + b.created).toBe(3);
    expect(a.episodeExists + b.episodeExists).toBe(3);
    for (const thread of threads) {
      expect(await reminders(w, thread)).toHaveLength(1);
    }
  });

  test('an open reminder already there: no new one', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await seedTask(w.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', authoredOn: ago(HOUR) });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ created: 0, alreadyReminded: 1 });
  });

  test('a reminder completed for the same silence is not repeated; a new patient message after a reply starts a new one', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await handler(w.server.medplum, cron());
    const [first] = await reminders(w, thread);
    await w.server.update({ ...first, status: 'completed' });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ created: 0, episodeExists: 1 });
    expect(await reminders(w, thread)).toHaveLength(1);

    await seedMessage(w.server, thread, w.provider, ago(4 * DAY));
    await seedMessage(w.server, thread, w.patient, ago(4 * DAY - 1000));
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
    expect(await reminders(w, thread)).toHaveLength(2);
  });
});

describe('escalation and auto-close', () => {
  async function withReminder(w: World, authoredAgo: number, priority: Task['priority'] = 'urgent'): Promise<{ thread: Communication; reminder: Task & { id: string } }> {
    const thread = await staleThread(w, authoredAgo + 3 * DAY);
    const reminder = await seedTask(w.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority, authoredOn: ago(authoredAgo) });
    return { thread, reminder };
  }

  test('unanswered after ESCALATE_AFTER_HOURS: one step up with a note, once per period', async () => {
    const w = await world();
    const { reminder } = await withReminder(w, 25 * HOUR);
    expect((await handler(w.server.medplum, cron())).escalated).toBe(1);
    const escalated = await w.server.read<Task>('Task', reminder.id);
    expect(escalated.priority).toBe('asap');
    expect(escalated.note).toHaveLength(1);
    expect(escalated.note?.[0].text).toContain('to asap');
    expect((await handler(w.server.medplum, cron())).escalated).toBe(0);
    expect((await w.server.read<Task>('Task', reminder.id)).note).toHaveLength(1);

    vi.setSystemTime(new Date(NOW + 24 * HOUR));
    expect((await handler(w.server.medplum, cron())).escalated).toBe(1);
    expect((await w.server.read<Task>('Task', reminder.id)).priority).toBe('stat');
  });

  test('never past stat', async () => {
    const w = await world();
    const { reminder } = await withReminder(w, 10 * DAY, 'stat');
    expect((await handler(w.server.medplum, cron())).escalated).toBe(0);
    expect((await w.server.read<Task>('Task', reminder.id)).meta?.versionId).toBe(reminder.meta?.versionId);
  });

  test('a late run escalates one step, not several', async () => {
    const w = await world();
    const { reminder } = await withReminder(w, 5 * DAY);
    await handler(w.server.medplum, cron());
    expect((await w.server.read<Task>('Task', reminder.id)).priority).toBe('asap');
  });

  test('ESCALATE_AFTER_HOURS is read from secrets', async () => {
    const w = await world();
    await withReminder(w, 5 * HOUR);
    expect((await handler(w.server.medplum, cron({ ESCALATE_AFTER_HOURS: '4' }))).escalated).toBe(1);
  });

  test('a care-team reply newer than the reminder completes it, with a note naming the reply', async () => {
    const w = await world();
    const { thread, reminder } = await withReminder(w, 10 * HOUR);
    const reply = await seedMessage(w.server, thread, w.provider, ago(HOUR));
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ closed: 1, created: 0, escalated: 0 });
    const closed = await w.server.read<Task>('Task', reminder.id);
    expect(closed.status).toBe('completed');
    expect(closed.note?.[0].text).toContain(`Communication/${reply.id}`);
  });

  test('a care-team message older than the reminder does not close it', async () => {
    const w = await world();
    const { thread, reminder } = await withReminder(w, 10 * HOUR);
    await seedMessage(w.server, thread, w.provider, ago(20 * DAY));
    expect((await handler(w.server.medplum, cron())).closed).toBe(0);
    expect((await w.server.read<Task>('Task', reminder.id)).status).toBe('requested');
  });

  test('a late reply (sent after the patient wrote, stamped before the reminder was created) closes it on the next run', async () => {
    const w = await world();
    const thread = await staleThread(w, 5 * DAY);
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
    const [reminder] = await reminders(w, thread);
    expect(reminder.extension).toEqual([{ url: 'urn:medplum-messaging-bots:silence-started', valueInstant: ago(5 * DAY) }]);
    // An SMS reply synced late: sent four days ago, stored after the reminder.
    await seedMessage(w.server, thread, w.provider, ago(4 * DAY), { meta: { lastUpdated: new Date(NOW + HOUR).toISOString() } });
    vi.setSystemTime(new Date(NOW + 2 * HOUR));
    expect(await handler(w.server.medplum, cron())).toMatchObject({ closed: 1, created: 0 });
    expect((await w.server.read<Task>('Task', reminder.id as string)).status).toBe('completed');
  });

  test('a reminder made before the start was recorded: its silence begins at the patient message its episode names', async () => {
    const w = await world();
    const thread = await staleThread(w, 5 * DAY);
    const [patientMessage] = await w.server.searchAll<Communication>('Communication', `part-of=Communication/${thread.id}`);
    const reminder = await seedTask(w.server, thread, {
      code: { coding: [REMINDER_CODE] },
      status: 'requested',
      priority: 'urgent',
      authoredOn: ago(HOUR),
      identifier: [{ system: EPISODE_SYSTEM, value: `${thread.id}:${patientMessage.id}` }],
    });
    await seedMessage(w.server, thread, w.provider, ago(4 * DAY));
    expect(await handler(w.server.medplum, cron())).toMatchObject({ closed: 1 });
    expect((await w.server.read<Task>('Task', reminder.id)).status).toBe('completed');
  });

  test('a conditional create that matches several reminders (412) means one exists: counted, not a failure', async () => {
    const w = await world();
    const thread = await staleThread(w, 5 * DAY);
    const [patientMessage] = await w.server.searchAll<Communication>('Communication', `part-of=Communication/${thread.id}`);
    const episode = [{ system: EPISODE_SYSTEM, value: `${thread.id}:${patientMessage.id}` }];
    for (let i = 0; i < 2; i++) {
      await seedTask(w.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'completed', identifier: episode });
    }
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ created: 0, episodeExists: 1, failed: 0 });
    expect(w.server.requests.find((r) => r.key === 'POST batch')?.entryStatuses).toEqual(['412']);
  });
});

describe('faults, deadline and cost', () => {
  test('a 503 on a chunk\'s writes fails the run with its summary; the reconcile goes on from that chunk, one reminder per thread', { timeout: 120_000 }, async () => {
    const w = await world({ quota: { perCaller: 1_000_000 } }); // faults, not quota, are under test here
    for (let i = 0; i < 600; i++) {
      await staleThread(w, 5 * DAY + i * 1000);
    }
    // The reconcile writes a chunk of a hundred threads at a time: the second chunk's batch fails for
    // good (with the client's two retries); the run stops there and records where it is.
    w.server.faults.push({ match: /^POST $/, status: 503, after: 1, times: 3 });
    const failure = await handler(w.server.medplum, cron()).catch((err: RunFailedError<StaleSummary>) => err);
    expect(failure).toBeInstanceOf(RunFailedError);
    expect((failure as RunFailedError<StaleSummary>).summary).toMatchObject({ created: 100, failed: 100, reconcile: { threads: 100, complete: false, pausedBy: 'writes' } });

    // The next run's first batch is applied but its response lost: the client's retry finds the reminders made.
    w.server.faults.push({ match: /^POST $/, status: 503, times: 1, when: 'after' });
    const second = await handler(w.server.medplum, cron());
    expect(second).toMatchObject({ failed: 0, created: 400, episodeExists: 100, reconcile: { threads: 500, complete: true } });
    const all = await reminders(w);
    expect(all).toHaveLength(600);
    expect(new Set(all.map((t) => t.focus?.reference)).size).toBe(600);
  });

  test('a deadline reached while reading writes nothing and logs it', async () => {
    const w = await world();
    await staleThread(w);
    const summary = await handler(w.server.medplum, cron({ BOT_TIMEOUT_SECONDS: '1' }));
    expect(summary).toMatchObject({ stoppedEarly: true, stoppedBy: 'deadline', created: 0 });
    expect(w.server.countByKey()['POST batch']).toBeUndefined();
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('deadline'))).toBe(true);
  });

  test('a deadline reached between chunks: the reconcile records where it is, and the next run goes on from there', { timeout: 60_000 }, async () => {
    const w = await world();
    for (let i = 0; i < 300; i++) {
      await staleThread(w, 5 * DAY + i * 1000);
    }
    w.server.beforeRequest = (r) => {
      if (r.key === 'POST batch' && r.batchEntries?.[0]?.startsWith('POST Task')) {
        vi.setSystemTime(new Date(Date.now() + 50_000)); // the first chunk's writes take 50 s of a 60 s timeout
      }
    };
    const first = await handler(w.server.medplum, cron({ BOT_TIMEOUT_SECONDS: '60' }));
    expect(first).toMatchObject({ created: 100, deferred: { quota: 0, deadline: 0 }, stoppedEarly: false, reconcile: { threads: 100, complete: false, pausedBy: 'deadline' } });
    w.server.beforeRequest = undefined;
    w.server.resetCounts();
    const second = await handler(w.server.medplum, cron());
    expect(second).toMatchObject({ created: 200, episodeExists: 0, reconcile: { threads: 200, complete: true } });
    // The second run's reconcile read whole only the threads the first did not reach (its hourly
    // part read the first hundred's recent messages: they have reminders now).
    const read = w.server.requests.filter((r) => new URL(r.url).searchParams.has('part-of') && !new URL(r.url).searchParams.has('_lastUpdated'));
    expect(read.flatMap((r) => (new URL(r.url).searchParams.get('part-of') as string).split(','))).toHaveLength(200);
    expect(await reminders(w)).toHaveLength(300);
  });

  test('2,000 threads of which 200 stale: all reminders in one run, a few requests per hundred threads, with rules and business hours too', { timeout: 300_000 }, async () => {
    const w = await world();
    const expected = await seedClinic(w.server, NOW, 2000);
    w.server.resetCounts();
    const allWeek = { timeZone: 'America/New_York', hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])) };
    const summary = await handler(
      w.server.medplum,
      cron({ STALE_RULES: JSON.stringify([{ category: 'http://x|y', afterHours: 1 }]), BUSINESS_HOURS: JSON.stringify(allWeek) })
    );
    expect(summary).toMatchObject({ threadsRead: 2000, stale: expected.stale, created: expected.remindersToCreate, failed: 0, reconcile: { threads: 2000, complete: true } });
    expect(expected.stale).toBe(200);
    // Per hundred threads, in each part (the hourly window, which a one-hour rule makes wide, and the
    // reconcile): their messages, their Tasks, their writes; plus the marker, the window, the
    // reminders, the header pages and the marker's record.
    expect(w.server.count()).toBeLessThanOrEqual(10 + 2 * 3 * (2000 / 100));
    expect(w.server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429'))).toEqual([]);
  });

  // Skipped only under mutation testing (vitest.mutation.config.mts): too large to rerun per mutant.
  test.skipIf(process.env.MUTATION)('10,000 threads under the real quota: the reconcile goes on run after run until done, nothing refused, nothing twice', { timeout: 900_000 }, async () => {
    const w = await world();
    const expected = await seedClinic(w.server, NOW, 10_000);
    const runs: StaleSummary[] = [];
    const requests: number[] = [];
    while (!runs.at(-1)?.reconcile?.complete && runs.length < 5) {
      vi.setSystemTime(new Date(NOW + runs.length * 60_000)); // the next run, in a new quota minute
      w.server.resetCounts();
      runs.push(await handler(w.server.medplum, cron({ BOT_TIMEOUT_SECONDS: '900' })));
      requests.push(w.server.count());
      expect(w.server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429'))).toEqual([]);
    }
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.slice(0, -1).map((r) => r.reconcile?.pausedBy)).toEqual(runs.slice(0, -1).map(() => 'quota'));
    expect(runs.map((r) => r.failed)).toEqual(runs.map(() => 0));
    expect(runs.reduce((n, r) => n + r.created, 0)).toBe(expected.remindersToCreate);
    const all = await reminders(w);
    expect(all).toHaveLength(expected.stale);
    expect(new Set(all.map((t) => t.focus?.reference)).size).toBe(expected.stale);
    // A few requests per hundred threads a run: never one per thread.
    expect(Math.max(...requests)).toBeLessThanOrEqual(10 + 2 * 3 * (10_000 / 100));
  });
});

describe('who answers a thread', () => {
  test('an auto-acknowledgement (Device, Organization, Bot) after the patient answers nothing: the thread is still reminded', async () => {
    const w = await world();
    const threads = [];
    for (const sender of ['Device/auto-ack', 'Organization/clinic', 'Bot/notifier']) {
      const thread = await staleThread(w);
      await seedMessage(w.server, thread, { reference: sender }, ago(5 * DAY - 60_000));
      threads.push(thread);
    }
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ stale: 3, created: 3, ignoredMessages: 3 });
    expect((await reminders(w, threads[0]))[0].description).toContain('unanswered for 5d 0h');
  });

  test('a thread only automated senders wrote in waits on nobody', async () => {
    const w = await world();
    const thread = await seedThread(w.server, { subject: w.patient, meta: { lastUpdated: ago(30 * DAY) } });
    await seedMessage(w.server, thread, { reference: 'Device/x' }, ago(5 * DAY));
    expect(await handler(w.server.medplum, cron())).toMatchObject({ created: 0, skipped: { noPersonMessage: 1 } });
  });

  test('an automated message after a reminder does not close it; a person of the care team does', async () => {
    const w = await world();
    const thread = await staleThread(w, 6 * DAY);
    const reminder = await seedTask(w.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(10 * HOUR) });
    await seedMessage(w.server, thread, { reference: 'Device/x' }, ago(HOUR));
    expect((await handler(w.server.medplum, cron())).closed).toBe(0);
    await seedMessage(w.server, thread, { reference: `PractitionerRole/${w.provider.reference.split('/')[1]}` }, ago(HOUR / 2));
    expect((await handler(w.server.medplum, cron())).closed).toBe(1);
    expect((await w.server.read<Task>('Task', reminder.id)).status).toBe('completed');
  });

  test('an entered-in-error message is not the last word', async () => {
    const w = await world();
    const thread = await staleThread(w, 6 * DAY);
    await seedMessage(w.server, thread, w.provider, ago(5 * DAY), { status: 'entered-in-error' });
    expect((await handler(w.server.medplum, cron())).created).toBe(1);
  });
});

describe('reminders on threads that closed', () => {
  test('an open reminder on a closed or deleted thread is cancelled with a note; earlier notes are kept', async () => {
    const w = await world();
    const closed = await staleThread(w);
    const onClosed = await seedTask(w.server, closed, {
      code: { coding: [REMINDER_CODE] },
      status: 'requested',
      authoredOn: ago(HOUR),
      note: [{ text: 'called the patient, no answer' }],
    });
    await w.server.update({ ...(await w.server.read<Communication>('Communication', closed.id)), status: 'completed' });
    const onDeleted = await seedTask(w.server, { ...closed, id: 'deleted-thread' }, { code: { coding: [REMINDER_CODE] }, status: 'in-progress', authoredOn: ago(HOUR) });
    const responseOnClosed = await seedTask(w.server, closed, { owner: w.provider });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ cancelled: 2, created: 0 });
    const cancelled = await w.server.read<Task>('Task', onClosed.id);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.note?.map((n) => n.text)).toEqual([
      'called the patient, no answer',
      `Cancelled by stale-thread-reminders: thread Communication/${closed.id} is no longer in progress (closed or deleted).`,
    ]);
    expect((await w.server.read<Task>('Task', onDeleted.id)).status).toBe('cancelled');
    // Only reminders: the bot does not touch other Tasks of a closed thread.
    expect((await w.server.read<Task>('Task', responseOnClosed.id)).meta?.versionId).toBe(responseOnClosed.meta?.versionId);
    expect((await handler(w.server.medplum, cron())).cancelled).toBe(0);
  });
});

describe('the reminder, by definition', () => {
  test('its owner is the owner of the most recently authored open response Task with an owner', async () => {
    const w = await world();
    const thread = await staleThread(w);
    const older = ref(await seedPractitioner(w.server));
    const newer = ref(await seedPractitioner(w.server));
    const newest = ref(await seedPractitioner(w.server));
    await seedTask(w.server, thread, { owner: older, authoredOn: ago(10 * DAY) });
    await seedTask(w.server, thread, { owner: newer, authoredOn: ago(8 * DAY) });
    await seedTask(w.server, thread, { owner: newest, authoredOn: ago(7 * DAY), status: 'completed' }); // closed: not counted
    await seedTask(w.server, thread, { authoredOn: ago(6 * DAY) }); // in the pool: no owner to take
    await handler(w.server.medplum, cron());
    expect((await reminders(w, thread))[0].owner).toEqual(newer);
  });

  test("escalating or closing appends a note: a nurse's notes stay", async () => {
    const w = await world();
    const nurse = [{ text: 'left a voicemail', authorString: 'nurse' }];
    const a = await staleThread(w, 6 * DAY);
    const escalate = await seedTask(w.server, a, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(30 * HOUR), note: nurse });
    const b = await staleThread(w, 6 * DAY);
    const close = await seedTask(w.server, b, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(10 * HOUR), note: nurse });
    await seedMessage(w.server, b, w.provider, ago(HOUR));
    expect(await handler(w.server.medplum, cron())).toMatchObject({ escalated: 1, closed: 1 });
    for (const task of [escalate, close]) {
      const notes = (await w.server.read<Task>('Task', task.id)).note ?? [];
      expect(notes).toHaveLength(2);
      expect(notes[0]).toEqual(nurse[0]);
      expect(notes[1].authorString).toBe('stale-thread-reminders');
    }
  });
});

describe('response rules and business hours', () => {
  const BILLING = { system: 'http://example.org/thread-category', code: 'billing' };
  const rules = JSON.stringify([{ category: `${BILLING.system}|${BILLING.code}`, afterHours: 4 }]);

  test('a thread in a category with a 4-hour rule is reminded after 5 silent hours; an uncategorised one is not', async () => {
    const w = await world();
    const billing = await staleThread(w, 5 * HOUR, { category: [{ coding: [BILLING] }] });
    const plain = await staleThread(w, 5 * HOUR);
    const summary = await handler(w.server.medplum, cron({ STALE_RULES: rules }));
    expect(summary).toMatchObject({ stale: 1, created: 1, byRule: { 'rule 1': 1 }, skipped: { recent: 1 } });
    const [reminder] = await reminders(w, billing);
    expect(reminder.description).toContain(`(rule 1 (category ${BILLING.system}|${BILLING.code}): after 4 hours, escalate every 24, reminder urgent)`);
    expect(await reminders(w, plain)).toHaveLength(0);
  });

  test('priority rules: the header priority (absent: routine), a reminder priority of its own', async () => {
    const w = await world();
    const urgent = await staleThread(w, 3 * HOUR, { priority: 'urgent' });
    await staleThread(w, 3 * HOUR);
    const summary = await handler(w.server.medplum, cron({ STALE_RULES: JSON.stringify([{ priority: 'urgent', afterHours: 2, reminderPriority: 'asap' }]) }));
    expect(summary.created).toBe(1);
    expect((await reminders(w, urgent))[0].priority).toBe('asap');
  });

  test('with one open hour a day, 80 wall-clock hours of silence are not 72 hours', async () => {
    const w = await world();
    await staleThread(w, 80 * HOUR);
    const oneHourADay = { timeZone: 'UTC', hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['12:00', '13:00']]])) };
    expect(await handler(w.server.medplum, cron({ BUSINESS_HOURS: JSON.stringify(oneHourADay) }))).toMatchObject({ stale: 0, created: 0, clock: 'business', skipped: { recent: 1 } });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ stale: 1, created: 1, clock: 'wall' });
  });

  test('escalation follows the matched rule, counted in business hours', async () => {
    const w = await world();
    const thread = await staleThread(w, 6 * DAY, { category: [{ coding: [BILLING] }] });
    const reminder = await seedTask(w.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'asap', authoredOn: ago(5 * HOUR) });
    const fast = JSON.stringify([{ category: `${BILLING.system}|${BILLING.code}`, afterHours: 4, escalateAfterHours: 2, reminderPriority: 'asap' }]);
    expect((await handler(w.server.medplum, cron({ STALE_RULES: fast }))).escalated).toBe(1);
    expect((await w.server.read<Task>('Task', reminder.id)).priority).toBe('stat');
    // The same reminder under the default rule (24 h) would not have escalated.
    const w2 = await world();
    const t2 = await staleThread(w2, 6 * DAY);
    await seedTask(w2.server, t2, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(5 * HOUR) });
    expect((await handler(w2.server.medplum, cron({ STALE_RULES: fast }))).escalated).toBe(0);
    // Friday 15:00 UTC, open 09:00-17:00 on weekdays: created Thursday 16:00, 2 business hours ago -> one period.
    const w3 = await world();
    const t3 = await staleThread(w3, 6 * DAY, { category: [{ coding: [BILLING] }] });
    const r3 = await seedTask(w3.server, t3, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'asap', authoredOn: ago(23 * HOUR) });
    const weekdays = { timeZone: 'UTC', hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri'].map((d) => [d, [['09:00', '17:00']]])) };
    const slow = JSON.stringify([{ category: `${BILLING.system}|${BILLING.code}`, afterHours: 4, escalateAfterHours: 8, reminderPriority: 'asap' }]);
    expect((await handler(w3.server.medplum, cron({ STALE_RULES: slow, BUSINESS_HOURS: JSON.stringify(weekdays) }))).escalated).toBe(0);
    expect((await w3.server.read<Task>('Task', r3.id)).priority).toBe('asap');
    expect((await handler(w3.server.medplum, cron({ STALE_RULES: slow }))).escalated).toBe(1); // 23 wall hours: two periods of 8
  });

  test('malformed rules or hours: one warning each saying what is wrong, and the defaults', async () => {
    const w = await world();
    await staleThread(w, 80 * HOUR);
    const summary = await handler(
      w.server.medplum,
      cron({ STALE_RULES: '[{"afterHours": "4"}]', BUSINESS_HOURS: '{"timeZone":"UTC","hours":{"fri":[["22:00","02:00"]]}}' })
    );
    expect(summary).toMatchObject({ created: 1, clock: 'wall', byRule: { default: 1 } });
    const warnings = vi.mocked(console.log).mock.calls.map((c) => String(c[0])).filter((l) => l.includes('WARN secret'));
    expect(warnings).toEqual([
      '[stale-thread-reminders] WARN secret STALE_RULES: rule 1: afterHours must be a positive number of hours; using the defaults',
      '[stale-thread-reminders] WARN secret BUSINESS_HOURS: hours.fri: 22:00-02:00 ends before it starts: an interval may not cross midnight; write 22:00-24:00 on this day and 00:00-02:00 on the next; using the defaults',
    ]);
    expect((await handler(w.server.medplum, cron({ STALE_RULES: 'not json' }))).created).toBe(0);
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('secret STALE_RULES is not valid JSON'))).toBe(true);
  });
});

describe('the FHIR quota', () => {
  test('1,000 due reminders under 50,000 points a minute: all created in ceil(points needed / budget) runs, none failed, none twice', { timeout: 120_000 }, async () => {
    const w = await world(); // the server's default quota
    for (let i = 0; i < 1000; i++) {
      await staleThread(w, 5 * DAY + i * 1000);
    }
    w.server.resetCounts();
    const runs: StaleSummary[] = [];
    let scanPoints = 0;
    while (runs.reduce((n, r) => n + r.created, 0) < 1000 && runs.length < 10) {
      vi.setSystemTime(new Date(NOW + runs.length * HOUR)); // hourly cron: a new quota minute each run
      const before = w.server.requests.length;
      runs.push(await handler(w.server.medplum, cron({ BOT_TIMEOUT_SECONDS: '600' })));
      scanPoints ||= w.server.requests.slice(before).filter((r) => r.method === 'GET').reduce((n, r) => n + r.points, 0);
    }
    const needed = 1000 * 120 + scanPoints; // a conditional create is a search and a write
    expect(runs).toHaveLength(Math.ceil(needed / 50_000));
    expect(runs.map((r) => r.failed)).toEqual(runs.map(() => 0));
    expect(runs.slice(0, -1).every((r) => r.deferred.quota > 0 && r.stoppedEarly)).toBe(true);
    expect(runs.at(-1)?.deferred).toEqual({ quota: 0, deadline: 0 });
    // Nothing was sent only to be refused: no 429, whole or per entry.
    expect(w.server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429'))).toEqual([]);
    const all = await reminders(w);
    expect(all).toHaveLength(1000);
    expect(new Set(all.map((t) => t.focus?.reference)).size).toBe(1000);
  });

  test('a 429 inside a batch (another run spending the quota) is deferred, never failed or a conflict', async () => {
    const w = await world({ quota: { perCaller: 5_000 } });
    for (let i = 0; i < 10; i++) {
      await staleThread(w, 5 * DAY + i * 1000);
    }
    w.server.beforeRequest = (r) => {
      if (r.key === 'POST batch') {
        w.server.quota.begin('bot').charge(w.server.quota.remaining('bot') - 500);
      }
    };
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ created: 4, failed: 0, conflicts: 0, deferred: { quota: 6 } });
    expect(vi.mocked(console.log).mock.calls.some((c) => String(c[0]).includes('6 write(s) or thread(s) left for the next run (quota: 6'))).toBe(true);
  });
});

describe('planStaleRun (pure)', () => {
  test('decides from ids and times alone', () => {
    const facts: StaleFacts = {
      threads: new Map([
        [
          'Communication/t',
          {
            ref: 'Communication/t',
            subject: 'Patient/p',
            kind: { categories: [], priority: 'routine' },
            header: { ref: 'Communication/t', time: NOW - 30 * DAY, role: 'patient' },
            timeline: {
              last: { ref: 'Communication/m2', time: NOW - DAY, role: 'patient' },
              lastCareTeam: { ref: 'Communication/c', time: NOW - 10 * DAY, role: 'care-team' },
              unanswered: [
                { ref: 'Communication/m2', time: NOW - DAY, role: 'patient' },
                { ref: 'Communication/m', time: NOW - 4 * DAY, role: 'patient' },
              ],
              ignored: 0,
            },
          },
        ],
      ]),
      openTasks: [],
      orphanReminders: [],
      ignoredMessages: 0,
    };
    const config: StaleConfig = {
      rules: [],
      defaultRule: { index: 0, afterHours: 72, escalateAfterHours: 24, reminderPriority: 'urgent' },
      clock: WALL_CLOCK,
      lookbackHours: 24,
      fullReconcileHour: 3,
    };
    const { writes, counts } = planStaleRun(facts, config, new Date(NOW).toISOString());
    expect(counts.stale).toBe(1);
    // Waiting from the first unanswered message (4 days, not 1): the episode after the care team's message, and the legacy names.
    expect(writes[0].entry.request).toEqual({
      method: 'POST',
      url: 'Task',
      ifNoneExist: `identifier=${EPISODE_SYSTEM}|t:after:c,${EPISODE_SYSTEM}|t:m,${EPISODE_SYSTEM}|t:m2`,
    });
  });
});

describe('details a clinic relies on', () => {
  const logLines = (): string[] => vi.mocked(console.log).mock.calls.map((c) => String(c[0]));

  test('which Tasks are reminders: our coding among others is; the same code in another system is not', async () => {
    const w = await world();
    const clinicCoded = await staleThread(w);
    await seedTask(w.server, clinicCoded, { code: { coding: [{ system: 'http://clinic.example/codes', code: 'callback' }, REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(HOUR) });
    const lookalike = await staleThread(w);
    await seedTask(w.server, lookalike, { code: { coding: [{ system: 'http://clinic.example/codes', code: REMINDER_CODE.code }] }, owner: w.provider });
    const textOnly = await staleThread(w);
    await seedTask(w.server, textOnly, { code: { text: 'call back' } });
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ stale: 3, alreadyReminded: 1, created: 2 });
    expect((await reminders(w, lookalike))[0].owner).toEqual(w.provider);
  });

  test('the owner comes from the newest response Task, whatever order the server lists them in', async () => {
    const w = await world();
    const thread = await staleThread(w);
    const [middle, newest, oldest] = [ref(await seedPractitioner(w.server)), ref(await seedPractitioner(w.server)), ref(await seedPractitioner(w.server))];
    await seedTask(w.server, thread, { owner: middle, authoredOn: ago(9 * DAY) });
    await seedTask(w.server, thread, { owner: newest, authoredOn: ago(8 * DAY) });
    await seedTask(w.server, thread, { owner: oldest, authoredOn: ago(10 * DAY) });
    await handler(w.server.medplum, cron());
    expect((await reminders(w, thread))[0].owner).toEqual(newest);
  });

  test('a response Task without authoredOn counts as the oldest when choosing the owner', async () => {
    const w = await world();
    const thread = await staleThread(w);
    const dated = ref(await seedPractitioner(w.server));
    await seedTask(w.server, thread, { owner: ref(await seedPractitioner(w.server)), authoredOn: undefined });
    await seedTask(w.server, thread, { owner: dated, authoredOn: ago(9 * DAY) });
    await seedTask(w.server, thread, { owner: ref(await seedPractitioner(w.server)), authoredOn: undefined });
    await handler(w.server.medplum, cron());
    expect((await reminders(w, thread))[0].owner).toEqual(dated);
  });

  test('a thread silent exactly STALE_AFTER_HOURS is stale', async () => {
    const w = await world();
    await staleThread(w, 72 * HOUR);
    await staleThread(w, 72 * HOUR - 1000);
    expect(await handler(w.server.medplum, cron())).toMatchObject({ stale: 1, created: 1, skipped: { recent: 1 } });
  });

  test('when the quota cannot cover every reminder, the longest silences get theirs first', async () => {
    // Seven searches (140: the marker, the window's two, the reminders, the headers, their messages,
    // the Tasks of the threads to remind), two conditional creates (240), and the marker's record (120).
    const w = await world({ quota: { perCaller: 500 } });
    // All older than the hourly window (96 h): the reconcile finds them, a chunk decided at once.
    // (The hourly part runs first: a thread crossing its threshold now is reminded before the
    // reconcile's, and within each chunk the longest silence goes first.)
    const silences = [4.5, 9, 6, 8, 5].map((days) => days * DAY);
    const threads = [];
    for (const [i, silence] of silences.entries()) {
      // Opened in this order (the order the scan reads them), whatever their silence.
      const opened = ago(40 * DAY - i * HOUR);
      threads.push(await staleThread(w, silence, { sent: opened, meta: { lastUpdated: opened } }));
    }
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ created: 2, deferred: { quota: 3 }, stoppedEarly: true });
    const reminded = (await reminders(w)).map((t) => t.focus?.reference);
    expect(reminded.sort()).toEqual([`Communication/${threads[1].id}`, `Communication/${threads[3].id}`].sort());
  });

  test('the reminder says what it is in words', async () => {
    const w = await world();
    const thread = await staleThread(w);
    await handler(w.server.medplum, cron());
    expect((await reminders(w, thread))[0].code).toEqual({ coding: [REMINDER_CODE], text: 'Respond to old message' });
  });

  test('escalation edges: no authoredOn, lowered by a nurse, no priority at all, and the note names the clock', async () => {
    const w = await world();
    const reminder = async (fields: Partial<Task>): Promise<Task & { id: string }> =>
      seedTask(w.server, await staleThread(w), { code: { coding: [REMINDER_CODE] }, status: 'requested', ...fields });
    const undated = await reminder({ priority: 'urgent', authoredOn: undefined });
    const lowered = await reminder({ priority: 'routine', authoredOn: ago(HOUR) });
    const unprioritised = await reminder({ priority: undefined, authoredOn: ago(25 * HOUR) });
    expect((await handler(w.server.medplum, cron())).escalated).toBe(1);
    expect((await w.server.read<Task>('Task', undated.id)).meta?.versionId).toBe(undated.meta?.versionId);
    expect((await w.server.read<Task>('Task', lowered.id)).priority).toBe('routine');
    const escalated = await w.server.read<Task>('Task', unprioritised.id);
    expect(escalated.priority).toBe('urgent');
    expect(escalated.note?.[0].text).toBe('Escalated by stale-thread-reminders to urgent: unanswered 25 h after it was created.');
  });

  test('in business hours a reminder due two steps up escalates, and the note counts business hours', async () => {
    const w = await world();
    // Open 09:00-17:00 UTC every day; now is Friday 15:00. Created Tuesday 22:00, 65 wall hours ago: 8 + 8 + 6 = 22 business hours.
    const everyDay = { timeZone: 'UTC', hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['09:00', '17:00']]])) };
    const r = await seedTask(w.server, await staleThread(w, 6 * DAY), { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'asap', authoredOn: ago(65 * HOUR) });
    const summary = await handler(w.server.medplum, cron({ BUSINESS_HOURS: JSON.stringify(everyDay), ESCALATE_AFTER_HOURS: '10' }));
    expect(summary.escalated).toBe(1);
    const escalated = await w.server.read<Task>('Task', r.id);
    expect(escalated.priority).toBe('stat');
    expect(escalated.note?.[0].text).toBe('Escalated by stale-thread-reminders to stat: unanswered 22 business hours after it was created.');
  });

  test('the log: a line per write and one summary line; a clean run does not stop early', async () => {
    const w = await world();
    const created = await staleThread(w);
    const escalate = await seedTask(w.server, await staleThread(w, 6 * DAY), { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(30 * HOUR) });
    const answered = await staleThread(w, 6 * DAY);
    const close = await seedTask(w.server, answered, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(10 * HOUR) });
    await seedMessage(w.server, answered, w.provider, ago(HOUR));
    const changing = await seedTask(w.server, await staleThread(w, 6 * DAY), { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(30 * HOUR) });
    w.server.beforeRequest = async (r) => {
      if (r.key === 'POST batch') {
        w.server.beforeRequest = undefined;
        await w.server.update({ ...(await w.server.read<Task>('Task', changing.id)), status: 'in-progress' });
      }
    };
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({ created: 1, escalated: 1, closed: 1, conflicts: 1, failed: 0, stoppedEarly: false });
    const [reminder] = await reminders(w, created);
    const lines = logLines();
    expect(lines).toContain(`[stale-thread-reminders] created Task/${reminder.id} for Communication/${created.id}`);
    expect(lines).toContain(`[stale-thread-reminders] escalated Task/${escalate.id}`);
    expect(lines).toContain(`[stale-thread-reminders] closed Task/${close.id}`);
    expect(lines).toContain(`[stale-thread-reminders] Task/${changing.id} changed meanwhile; the next run decides again`);
    expect(lines.filter((l) => l.includes('left for the next run'))).toEqual([]);
    expect(lines.at(-1)).toBe(
      '[stale-thread-reminders] threads=4 stale=3 created=1 episodeExists=0 alreadyReminded=2 escalated=1 closed=1 cancelled=0 ' +
        'skipped={"noSubject":0,"recent":0,"careTeamLast":1,"noPersonMessage":0} ignoredMessages=0 byRule={"default":3} ' +
        'clock=wall mode=full conflicts=1 failed=0 deferred={"quota":0,"deadline":0}'
    );
  });

  test('a failed write is logged with its thread and the error, and the run fails naming how many', async () => {
    const w = await world();
    const thread = await staleThread(w);
    w.server.faults.push({ match: /^POST $/, status: 503, times: 3 });
    const failure = await handler(w.server.medplum, cron()).catch((err: Error) => err);
    expect((failure as Error).message).toBe('stale-thread-reminders: 1 write(s) failed; the next run retries them');
    expect(logLines()).toContain(`[stale-thread-reminders] WARN create for Communication/${thread.id} failed (error): Service Unavailable`);
  });

  test('stopped early by the quota while reading: says so, and an all-zero summary', async () => {
    const w = await world({ quota: { perCaller: 30 } });
    await staleThread(w);
    const summary = await handler(w.server.medplum, cron());
    expect(summary).toMatchObject({
      stoppedEarly: true,
      stoppedBy: 'quota',
      created: 0,
      skipped: { noSubject: 0, recent: 0, careTeamLast: 0, noPersonMessage: 0 },
    });
    expect(logLines()).toContain('[stale-thread-reminders] WARN stopped early (quota): the FHIR quota ran out while reading; nothing written, the next run starts over');
  });

  test('never reads message text: every Communication search asks only for the fields it decides on', async () => {
    const w = await world();
    await staleThread(w);
    await handler(w.server.medplum, cron());
    const searches = w.server.requests.filter((r) => r.key === 'GET Communication').map((r) => new URL(r.url, 'http://x').searchParams);
    // The hourly window (two searches), the open headers, their messages.
    expect(searches.map((q) => q.get('_elements'))).toEqual([
      'partOf,sender,sent,status',
      'partOf,sender,sent,status',
      'subject,sender,sent,category,priority,status',
      'partOf,sender,sent,status',
    ]);
    expect(searches[2].get('part-of:missing')).toBe('true');
    expect(searches[3].get('part-of')).toMatch(/^Communication\//);
  });

  test('a header without a sender is not an ignored message; a message listing another resource first still counts', async () => {
    const w = await world();
    const thread = await seedThread(w.server, { subject: w.patient, sent: ago(40 * DAY), meta: { lastUpdated: ago(40 * DAY) } });
    await seedMessage(w.server, thread, w.patient, ago(5 * DAY), { partOf: [{ reference: 'Encounter/visit-1' }, ref(thread)] });
    expect(await handler(w.server.medplum, cron())).toMatchObject({ ignoredMessages: 0, stale: 1, created: 1 });
  });
});
