// Fault table: 429 and 503 at each step of each bot, transient (MedplumClient's two retries absorb it)
// and persistent, plus a write applied whose response is lost. After every case: nothing
// half-changed, nothing duplicated, and a clean second run reaches the end state of a run without
// faults. The server never redelivers a failed Subscription run, so for the OOO bot that second run
// is the sweep (its cron run); for the stale bot it is the next cron run.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { handler as oooHandler } from '../src/ooo-reroute';
import type { RerouteSummary } from '../src/ooo-reroute';
import { handler as staleHandler } from '../src/stale-thread-reminders';
import type { StaleSummary } from '../src/stale-thread-reminders';
import type { RunFailedError } from '../src/lib/bot-runtime';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import {
  botEvent,
  message,
  ref,
  REMINDER_CODE,
  REMINDER_SEARCH,
  seedMessage,
  seedOwnedThread,
  seedPatient,
  seedPractitioner,
  seedTask,
  seedThread,
} from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import type { FaultRule, ServerMock } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z');
const DAY = 86_400_000;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

useFixedTimeAndQuietConsole(NOW);

type Step = 'first request' | 'mid-run read' | 'last write';
interface Case {
  step: Step;
  status: 429 | 503;
  persistence: 'transient' | 'persistent' | 'applied, response lost';
}

const cases: Case[] = (['first request', 'mid-run read', 'last write'] as Step[]).flatMap((step) =>
  ([429, 503] as const).flatMap((status) =>
    (['transient', 'persistent'] as const).map((persistence): Case => ({ step, status, persistence }))
  )
);
cases.push({ step: 'last write', status: 503, persistence: 'applied, response lost' });

function fault(c: Case, match: RegExp, after = 0): FaultRule {
  return {
    match,
    status: c.status,
    after,
    times: c.persistence === 'persistent' ? Infinity : 1,
    when: c.persistence === 'applied, response lost' ? 'after' : 'before',
  };
}

describe('ooo-reroute under faults', () => {
  const steps: Record<Step, RegExp> = { 'first request': /^GET Task$/, 'mid-run read': /^GET Slot$/, 'last write': /^POST $/ };

  async function world(): Promise<{ server: ServerMock; tasks: Task[]; thread: Communication; input: Communication }> {
    const server = createServerMock();
    const { owner, patient, thread, task } = await seedOwnedThread(server, { away: true });
    const tasks = [task, await seedTask(server, thread, { owner: ref(owner), status: 'on-hold', note: [{ text: 'earlier' }] })];
    // The message that fired the Subscription is stored, as on the server: the sweep reads it.
    const input = await server.seed<Communication>({ ...message(thread, patient), id: 'm1', sent: new Date(NOW - 60_000).toISOString() });
    return { server, tasks, thread, input };
  }

  /** Each Task is either as seeded or fully rerouted: never in between. */
  async function taskStates(server: ServerMock, tasks: Task[]): Promise<('initial' | 'rerouted')[]> {
    return Promise.all(
      tasks.map(async (seeded) => {
        const now = await server.read<Task>('Task', seeded.id as string);
        if (now.meta?.versionId === seeded.meta?.versionId) {
          return 'initial';
        }
        expect(now.owner).toBeUndefined();
        // A held Task keeps its hold; the others go back to requested.
        expect(now.status).toBe(seeded.status === 'on-hold' ? 'on-hold' : 'requested');
        expect(now.note).toHaveLength((seeded.note?.length ?? 0) + 1);
        return 'rerouted';
      })
    );
  }

  test.each(cases)('$status $persistence at the $step', async (c) => {
    const { server, tasks, thread, input } = await world();
    server.faults.push(fault(c, steps[c.step]));
    const outcome = await oooHandler(server.medplum, botEvent(input)).then(
      (summary) => summary as RerouteSummary,
      (err: Error) => err
    );
    const states = await taskStates(server, tasks);
    if (c.persistence === 'persistent') {
      // A failed read or write fails the run before anything is written.
      expect(states).toEqual(['initial', 'initial']);
      expect(outcome instanceof Error || outcome.rerouted === 0).toBe(true);
    } else {
      // When the write's response was lost, the retry finds the Tasks already rerouted by this message.
      const summary = outcome as Exclude<typeof outcome, Error>;
      const done = summary.decisions.filter((d) => d.action === 'to-pool' || d.reason === 'already rerouted for this message');
      expect(done).toHaveLength(2);
      expect(states).toEqual(['rerouted', 'rerouted']);
    }

    server.faults.length = 0;
    await oooHandler(server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' })); // the next sweep
    expect(await taskStates(server, tasks)).toEqual(['rerouted', 'rerouted']);
    expect((await server.read<Communication>('Communication', thread.id as string)).recipient).toHaveLength(1);
  });
});

describe('stale-thread-reminders under faults', () => {
  // 300 stale threads: the hourly part's batch (one escalation, one close), then the reconcile's, a
  // hundred threads each; the reconcile stops at the first chunk whose writes do not all go through.
  const steps: Record<Step, [RegExp, number]> = {
    'first request': [/^GET Communication$/, 0],
    'mid-run read': [/^GET Task$/, 0],
    'last write': [/^POST $/, 1],
  };

  async function world(): Promise<{ server: ServerMock; threads: Communication[]; escalate: Task; close: Task }> {
    const server = createServerMock();
    const patient = ref(await seedPatient(server));
    const provider = ref(await seedPractitioner(server));
    const threads: Communication[] = [];
    for (let i = 0; i < 300; i++) {
      const thread = await seedThread(server, { subject: patient, meta: { lastUpdated: ago(30 * DAY + i) } });
      await seedMessage(server, thread, patient, ago(5 * DAY + i));
      threads.push(thread);
    }
    const reminder = (thread: Communication, authoredAgo: number): Promise<Task & { id: string }> =>
      seedTask(server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(authoredAgo) });
    const escalate = await reminder(threads[0], 30 * 3_600_000);
    const answered = await seedThread(server, { subject: patient, meta: { lastUpdated: ago(30 * DAY) } });
    await seedMessage(server, answered, patient, ago(5 * DAY));
    const close = await reminder(answered, 4 * DAY);
    await seedMessage(server, answered, provider, ago(DAY));
    return { server, threads, escalate, close };
  }

  async function check(server: ServerMock, threads: Communication[], escalate: Task, close: Task, complete: boolean): Promise<void> {
    const reminders = await server.searchAll<Task>('Task', `${REMINDER_SEARCH}&_count=10000`);
    const perThread = new Map<string, number>();
    for (const r of reminders) {
      perThread.set(r.focus?.reference as string, (perThread.get(r.focus?.reference as string) ?? 0) + 1);
    }
    // Never two reminders for one silence.
    expect(Math.max(...perThread.values())).toBe(1);
    const escalated = await server.read<Task>('Task', escalate.id as string);
    const closed = await server.read<Task>('Task', close.id as string);
    // Each patch is whole: a note comes with its change, and only once.
    expect(escalated.note?.length ?? 0).toBe(escalated.priority === 'asap' ? 1 : 0);
    expect(closed.note?.length ?? 0).toBe(closed.status === 'completed' ? 1 : 0);
    if (complete) {
      expect(threads.every((t) => perThread.get(`Communication/${t.id}`) === 1)).toBe(true);
      expect(escalated.priority).toBe('asap');
      expect(closed.status).toBe('completed');
    }
  }

  test.each(cases)('$status $persistence at the $step', async (c) => {
    const { server, threads, escalate, close } = await world();
    const [match, after] = steps[c.step];
    server.faults.push(fault(c, match, after));
    const outcome = await staleHandler(server.medplum, botEvent({}, { BOT_TIMEOUT_SECONDS: '600' })).then(
      (summary) => summary,
      (err: Error) => err
    );
    if (c.persistence === 'persistent' && c.step !== 'last write' && c.status === 503) {
      expect(outcome).toBeInstanceOf(Error); // a read that keeps failing fails the run, before any write
    } else if (c.persistence === 'persistent' && c.step !== 'last write') {
      // The quota refusing a read is no failure: the run stops before any write and says so.
      expect(outcome).toMatchObject({ stoppedEarly: true, stoppedBy: 'quota', created: 0, failed: 0 });
    } else if (c.persistence === 'persistent' && c.status === 503) {
      // Writes that keep failing fail the run (the server records it), with what was done: the
      // hourly part's escalation and close, then the reconcile's first chunk of creates (a hundred threads) failed.
      expect((outcome as RunFailedError<StaleSummary>).summary).toMatchObject({ escalated: 1, closed: 1, created: 0, failed: 100, reconcile: { threads: 0, pausedBy: 'writes' } });
    } else if (c.persistence === 'persistent') {
      // A 429 is the quota: the rest waits for the next run, deferred, never counted as failed.
      expect(outcome).toMatchObject({ escalated: 1, closed: 1, created: 0, failed: 0, deferred: { quota: 100 }, reconcile: { threads: 0, pausedBy: 'quota' } });
    }
    await check(server, threads, escalate, close, c.persistence !== 'persistent');

    server.faults.length = 0;
    const next = await staleHandler(server.medplum, botEvent({}, { BOT_TIMEOUT_SECONDS: '600' }));
    expect(next.failed).toBe(0);
    await check(server, threads, escalate, close, true);
  });
});
