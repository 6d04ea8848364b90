// A patient waits from the FIRST patient-side message after the care team last spoke (or since the
// thread began): follow-ups never restart the clock, nor add a reminder. One reminder per waiting
// episode, named like the response lifecycle's (`<thread>:after:<care-team message | start>`), in
// full and incremental runs alike; the SLA export times the same episode from the same message.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler as oooHandler } from '../../src/ooo-reroute';
import { handler } from '../../src/stale-thread-reminders';
import type { StaleSummary } from '../../src/stale-thread-reminders';
import { main as slaExport } from '../../src/sla/sla-export';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { addToTimeline, conversation, currentEpisode, firstUnanswered, unansweredRun } from '../../src/lib/thread';
import type { MessagePoint, Timeline } from '../../src/lib/thread';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, REMINDER_CODE, REMINDER_SEARCH, seedMessage, seedPatient, seedPractitioner, seedTask, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:00:00.000Z'); // not the full-reconcile hour (03 UTC)
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const EPISODE = 'urn:medplum-messaging-bots:stale-thread-episode';
const SILENCE_STARTED = 'urn:medplum-messaging-bots:silence-started';
/** The two ways a run reads: the whole of every open thread, or the hourly window. */
const RUNS = { full: { full: true }, incremental: { full: false } } as const;

useFixedTimeAndQuietConsole(NOW);
// Whole runs against the in-memory server (the first also indexes FHIR's definitions): not timed.
vi.setConfig({ testTimeout: 60_000 });

interface Clinic {
  server: ServerMock;
  patient: Ref;
  nurse: Ref;
}

async function clinic(): Promise<Clinic> {
  const server = createServerMock();
  return { server, patient: ref(await seedPatient(server)), nurse: ref(await seedPractitioner(server)) };
}

/** A thread opened 30 days ago (a header without sender), where the care team wrote 10 days ago. */
async function answeredThread(c: Clinic): Promise<{ thread: Communication & { id: string }; reply: Communication & { id: string } }> {
  const thread = await seedThread(c.server, { subject: c.patient, sent: ago(30 * DAY), meta: { lastUpdated: ago(30 * DAY) } });
  const reply = await seedMessage(c.server, thread, c.nurse, ago(10 * DAY));
  return { thread, reply };
}

async function run(c: Clinic, input: unknown, secrets: Record<string, string> = {}): Promise<StaleSummary> {
  return handler(c.server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '600', ...secrets }));
}

async function reminders(c: Clinic): Promise<Task[]> {
  return c.server.searchAll<Task>('Task', REMINDER_SEARCH);
}

const silenceStart = (task: Task): string | undefined => task.extension?.find((e) => e.url === SILENCE_STARTED)?.valueInstant;
const episode = (task: Task): string | undefined => task.identifier?.find((i) => i.system === EPISODE)?.value;

describe.each(Object.entries(RUNS))('the waiting clock, %s run', (_name, input) => {
  test('a patient who writes again is not waited on for less: reminded 72 h after the first message, once', async () => {
    const c = await clinic();
    const { thread, reply } = await answeredThread(c);
    const first = await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(30 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(2 * HOUR));

    expect(await run(c, input)).toMatchObject({ stale: 1, created: 1, failed: 0 });
    const [reminder] = await reminders(c);
    expect(episode(reminder)).toBe(`${thread.id}:after:${reply.id}`);
    expect(silenceStart(reminder)).toBe(ago(80 * HOUR));
    expect(reminder.description).toBe(
      `Patient message Communication/${first.id} unanswered for 3d 8h (default rule: after 72 hours, escalate every 24, reminder urgent).`
    );

    // Another follow-up: the same episode, no second reminder.
    await seedMessage(c.server, thread, c.patient, ago(HOUR));
    expect(await run(c, input)).toMatchObject({ created: 0, alreadyReminded: 1 });
    expect(await reminders(c)).toHaveLength(1);
  });

  test('a reminder a person dismissed is not made again for the same episode, follow-ups or not', async () => {
    const c = await clinic();
    const { thread } = await answeredThread(c);
    await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    expect((await run(c, input)).created).toBe(1);
    const [reminder] = await reminders(c);
    await c.server.update({ ...reminder, status: 'cancelled' }); // dismissed by hand

    expect(await run(c, input)).toMatchObject({ created: 0, episodeExists: 1 });
    await seedMessage(c.server, thread, c.patient, ago(20 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(HOUR));
    expect(await run(c, input)).toMatchObject({ created: 0, episodeExists: 1 });
    expect(await reminders(c)).toHaveLength(1);
  });

  test('a care-team reply, then the patient writes again: a new episode and a new reminder, timed from its first message', async () => {
    const c = await clinic();
    const { thread } = await answeredThread(c);
    await seedMessage(c.server, thread, c.patient, ago(9 * DAY));
    expect((await run(c, RUNS.full)).created).toBe(1);

    const answer = await seedMessage(c.server, thread, c.nurse, ago(5 * DAY));
    const asked = await seedMessage(c.server, thread, c.patient, ago(90 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(DAY)); // a follow-up
    expect(await run(c, input)).toMatchObject({ created: 1, closed: 1 });
    const all = await reminders(c);
    expect(all.map((t) => t.status).sort()).toEqual(['completed', 'requested']);
    const fresh = all.find((t) => t.status === 'requested') as Task;
    expect(episode(fresh)).toBe(`${thread.id}:after:${answer.id}`);
    expect(silenceStart(fresh)).toBe(ago(90 * HOUR));
    expect(fresh.description).toContain(`Communication/${asked.id} unanswered for 3d 18h`);
  });

  test('a clinic upgrading: a reminder an older version named after the episode\'s first message stops a second one', async () => {
    const c = await clinic();
    const { thread } = await answeredThread(c);
    const first = await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(75 * HOUR));
    await seedTask(c.server, thread, {
      code: { coding: [REMINDER_CODE] },
      status: 'completed',
      identifier: [{ system: EPISODE, value: `${thread.id}:${first.id}` }],
    });
    expect(await run(c, input)).toMatchObject({ stale: 1, created: 0, episodeExists: 1, failed: 0 });
    expect(await reminders(c)).toHaveLength(1);
  });
});

describe('the incremental run names the episode right when it began before the window', () => {
  test('the first unanswered message is older than the window: the run looks back to the care team\'s last message', async () => {
    const c = await clinic();
    const { thread, reply } = await answeredThread(c);
    const first = await seedMessage(c.server, thread, c.patient, ago(5 * DAY)); // before the window (96 h)
    await seedMessage(c.server, thread, c.patient, ago(80 * HOUR)); // in it
    c.server.resetCounts();
    expect(await run(c, RUNS.incremental)).toMatchObject({ mode: 'incremental', created: 1 });
    const [reminder] = await reminders(c);
    expect(episode(reminder)).toBe(`${thread.id}:after:${reply.id}`);
    expect(silenceStart(reminder)).toBe(ago(5 * DAY));
    expect(reminder.description).toContain(`Communication/${first.id} unanswered for 5d 0h`);
    // One look-back search: this thread's messages stored before the window, newest first.
    const lookBacks = c.server.requests.filter((r) => r.key === 'GET Communication' && new URL(r.url).searchParams.get('_sort') === '-_lastUpdated');
    expect(lookBacks).toHaveLength(1);
    expect(new URL(lookBacks[0].url).searchParams.get('part-of')).toBe(`Communication/${thread.id}`);
  });

  test('a long unanswered run is read back page by page, never by offset; a thread the care team never answered is named after its start', async () => {
    const c = await clinic();
    const thread = await seedThread(c.server, { subject: c.patient, meta: { lastUpdated: ago(40 * DAY) } });
    for (let i = 0; i < 250; i++) {
      await seedMessage(c.server, thread, i % 2 ? c.patient : { reference: 'Device/auto-ack' }, ago(20 * DAY - i * HOUR));
    }
    await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    c.server.resetCounts();
    expect(await run(c, RUNS.incremental)).toMatchObject({ created: 1 });
    const [reminder] = await reminders(c);
    expect(episode(reminder)).toBe(`${thread.id}:after:start`);
    expect(silenceStart(reminder)).toBe(ago(20 * DAY - HOUR));
    expect(c.server.requests.filter((r) => new URL(r.url).searchParams.has('_offset'))).toEqual([]);
  });

  test('a thread already reminded, or whose care team wrote inside the read range, needs no look-back', async () => {
    const c = await clinic();
    const { thread } = await answeredThread(c);
    await seedMessage(c.server, thread, c.patient, ago(5 * DAY));
    await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    await seedTask(c.server, thread, { code: { coding: [REMINDER_CODE] }, status: 'requested', authoredOn: ago(HOUR), extension: [{ url: SILENCE_STARTED, valueInstant: ago(5 * DAY) }] });
    const other = await seedThread(c.server, { subject: c.patient, meta: { lastUpdated: ago(30 * DAY) } });
    await seedMessage(c.server, other, c.nurse, ago(90 * HOUR));
    await seedMessage(c.server, other, c.patient, ago(80 * HOUR));
    c.server.resetCounts();
    expect(await run(c, RUNS.incremental)).toMatchObject({ created: 1, alreadyReminded: 1 });
    expect(c.server.requests.filter((r) => new URL(r.url).searchParams.get('_sort') === '-_lastUpdated')).toEqual([]);
  });
});

describe('the stale bot and the SLA export time the same episode', () => {
  test.each(Object.entries(RUNS))('a patient who wrote twice (%s run): the reminder\'s silence starts at the export\'s started_at of the lifecycle Task', async (_name, input) => {
    const c = await clinic();
    const { thread } = await answeredThread(c);
    const opening = await seedMessage(c.server, thread, c.patient, ago(80 * HOUR));
    await seedMessage(c.server, thread, c.patient, ago(DAY));
    // The OOO bot's sweep opens the response Task for the episode (RESPONSE_TASKS on).
    await oooHandler(c.server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' }, { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '600' }));
    const [responseTask] = await c.server.searchAll<Task>('Task', 'code=https://medplum.com/task-codes|respond-to-message');
    expect(responseTask.input?.[0].valueReference?.reference).toBe(`Communication/${opening.id}`);
    expect((await run(c, input)).created).toBe(1);
    const [reminder] = await reminders(c);

    let out = '';
    const quiet = { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined };
    // Exported a minute later: the export counts Tasks authored before its `now`.
    const code = await slaExport([], { medplum: c.server.clientAs('user'), now: new Date(NOW + 60_000), stdout: (t) => (out += t), stderr: () => undefined, progress: quiet });
    expect(code).toBe(0);
    const row = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SlaRow)
      .find((r) => r.id === responseTask.id) as SlaRow;
    expect(row.started_at).toBe(ago(80 * HOUR));
    expect(silenceStart(reminder)).toBe(row.started_at);
  });
});

describe('the timeline gives the first unanswered message, from messages in any order', () => {
  /** A small deterministic generator: the same permutations every run. */
  function shuffled<T>(items: T[], seed: number): T[] {
    const out = [...items];
    let s = seed;
    for (let i = out.length - 1; i > 0; i--) {
      s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
      const j = s % (i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
  const point = (id: string, role: MessagePoint['role'], hoursAgo: number): MessagePoint => ({ ref: `Communication/${id}`, time: NOW - hoursAgo * HOUR, role });

  test('as the lifecycle\'s episode opening, whatever the order, keeping only the unanswered run', () => {
    const histories: MessagePoint[][] = [
      [point('p1', 'patient', 50), point('c1', 'care-team', 40), point('p2', 'patient', 30), point('p3', 'patient', 20), point('a', 'automated', 10)],
      [point('p1', 'patient', 50), point('p2', 'patient', 40)],
      [point('p1', 'patient', 50), point('c1', 'care-team', 40)],
      [point('c1', 'care-team', 50), point('c2', 'care-team', 40), point('p1', 'patient', 30), point('c3', 'care-team', 20), point('p2', 'patient', 10), point('p3', 'patient', 5)],
      [point('x', 'unknown', 3)],
      // Two at one instant: the reference breaks the tie, as everywhere.
      [point('c1', 'care-team', 10), point('p1', 'patient', 10), point('b', 'patient', 10)],
    ];
    for (const history of histories) {
      const expected = currentEpisode(conversation(history));
      for (let seed = 1; seed <= 20; seed++) {
        const timeline: Timeline = { ignored: 0 };
        for (const p of shuffled(history, seed)) {
          addToTimeline(timeline, p);
        }
        addToTimeline(timeline, history[0]); // a message read twice changes nothing
        const first = firstUnanswered(timeline);
        expect(first?.ref).toBe(expected.last?.role === 'patient' ? expected.opening?.ref : undefined);
        expect(timeline.lastCareTeam?.ref).toBe(expected.boundary?.ref);
        const after = history.filter((p) => p.role === 'patient' && (!expected.boundary || p.time > expected.boundary.time || (p.time === expected.boundary.time && p.ref > expected.boundary.ref)));
        expect(unansweredRun(timeline).map((p) => p.ref)).toEqual(conversation(after).points.map((p) => p.ref));
      }
    }
  });
});
