// Issue #28, invariant 5 (`episode-without-task`): with the lifecycle on, the sweep reads the threads
// with a message stored since the last sweep that finished cleanly (its marker), at least the last
// 24 hours and at most 14 days. A patient who wrote just after the bot was switched off gets a Task
// when it comes back a little over a day later, and still when its first sweep back is not clean.
// As in the simulation's seed 4, 8 days, 12 providers (th69): off 21 October 13:00Z to 22 October
// 13:30Z, m895 stored at 13:02Z.
import type { Basic, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { LIFECYCLE_LOOKBACK_CAP_MS, LIFECYCLE_LOOKBACK_MS, lookBackFrom, MARKER_REFRESH_MS, SWEEP_CLEAN_URL, SWEEP_MARKER_IDENTIFIER } from '../../src/realtime/sweep-marker';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const T0 = Date.parse('2026-10-21T13:00:00.000Z'); // the last sweep before the bot is switched off
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const at = (ms: number): string => new Date(ms).toISOString();
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(T0);

async function sweep(server: ServerMock): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
}

async function markers(server: ServerMock): Promise<Basic[]> {
  return server.searchAll<Basic>('Basic', `identifier=${SWEEP_MARKER_IDENTIFIER.system}|${SWEEP_MARKER_IDENTIFIER.value}`);
}

const recorded = (marker: Basic | undefined): string | undefined => marker?.extension?.find((e) => e.url === SWEEP_CLEAN_URL)?.valueInstant;

async function clinic(): Promise<{ server: ServerMock; thread: { id: string }; write: (time: number) => Promise<unknown> }> {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB]);
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
  return { server, thread, write: (time) => seedMessage(server, thread, patient, at(time)) };
}

async function openTasks(server: ServerMock, thread: { id: string }): Promise<Task[]> {
  return (await server.searchAll<Task>('Task', `focus=Communication/${thread.id}`)).filter((t) => t.status === 'requested');
}

describe('the bot off for a little over a day', () => {
  test('a patient who wrote just after it went off gets a Task from the first sweep back', async () => {
    const { server, thread, write } = await clinic();
    expect(await sweep(server)).toMatchObject({ stoppedEarly: false });
    expect((await markers(server)).map(recorded)).toEqual([at(T0)]);

    await write(T0 + 2 * MINUTE); // its event never runs: the Subscription is off
    vi.setSystemTime(T0 + DAY + 30 * MINUTE);
    expect(await sweep(server)).toMatchObject({ opened: 1, stoppedEarly: false, failed: 0 });
    expect(await openTasks(server, thread)).toHaveLength(1);
    expect((await markers(server)).map(recorded)).toEqual([at(T0 + DAY + 30 * MINUTE)]);
  });

  test('when the first sweep back is not clean, the next one still looks back to the last clean sweep', async () => {
    const { server, thread, write } = await clinic();
    await sweep(server);
    await write(T0 + 2 * MINUTE);

    // First sweep back: a burst leaves 10 points after its Task scan; it stops before reading on.
    vi.setSystemTime(T0 + DAY + 30 * MINUTE);
    server.beforeRequest = (request) => {
      if (request.caller === DEFAULT_CALLER && request.key.startsWith('GET Task')) {
        server.beforeRequest = undefined;
        server.quota.begin(DEFAULT_CALLER).charge(server.quota.remaining(DEFAULT_CALLER) - 30);
      }
    };
    expect(await sweep(server)).toMatchObject({ stoppedEarly: true, opened: 0 });
    expect((await markers(server)).map(recorded)).toEqual([at(T0)]);

    vi.setSystemTime(T0 + DAY + 45 * MINUTE);
    expect(await sweep(server)).toMatchObject({ opened: 1, stoppedEarly: false });
    expect(await openTasks(server, thread)).toHaveLength(1);
  });

  test('a sweep whose writes are deferred does not move the marker', async () => {
    const { server, write } = await clinic();
    await sweep(server);
    // Late enough that a clean sweep would rewrite the marker.
    vi.setSystemTime(T0 + MARKER_REFRESH_MS + 15 * MINUTE);
    await write(T0 + MARKER_REFRESH_MS + 10 * MINUTE);
    // Everything but what the reads need is spent before the batch: the Task's create is deferred.
    server.beforeRequest = (request) => {
      if (request.caller === DEFAULT_CALLER && request.key === 'POST batch') {
        server.beforeRequest = undefined;
      }
      if (request.caller === DEFAULT_CALLER && request.key.startsWith('GET Schedule')) {
        server.quota.begin(DEFAULT_CALLER).charge(server.quota.remaining(DEFAULT_CALLER) - 100);
      }
    };
    const summary = await sweep(server);
    expect(summary.opened).toBe(0);
    expect(summary.deferred.quota).toBeGreaterThan(0);
    expect((await markers(server)).map(recorded)).toEqual([at(T0)]);
  });
});

describe('the marker is rewritten every few hours, not by every sweep', () => {
  test('clean sweeps within MARKER_REFRESH_MS of the recorded one write nothing; the first one after it records itself', async () => {
    const { server } = await clinic();
    await sweep(server);
    const first = await markers(server);
    expect(first.map(recorded)).toEqual([at(T0)]);

    for (let t = T0 + 15 * MINUTE; t < T0 + MARKER_REFRESH_MS; t += 15 * MINUTE) {
      vi.setSystemTime(t);
      expect(await sweep(server)).toMatchObject({ stoppedEarly: false });
    }
    const unchanged = await markers(server);
    expect(unchanged.map(recorded)).toEqual([at(T0)]);
    expect(unchanged[0].meta?.versionId).toBe(first[0].meta?.versionId);

    vi.setSystemTime(T0 + MARKER_REFRESH_MS);
    await sweep(server);
    expect((await markers(server)).map(recorded)).toEqual([at(T0 + MARKER_REFRESH_MS)]);
  });
});

describe('how far back', () => {
  const now = T0;
  test('at least the last 24 hours, back to the last clean sweep (less a clock margin), at most 14 days', () => {
    expect(lookBackFrom(undefined, now)).toBe(now - LIFECYCLE_LOOKBACK_MS);
    expect(lookBackFrom(now - 15 * MINUTE, now)).toBe(now - DAY);
    expect(lookBackFrom(now - DAY - 30 * MINUTE, now)).toBe(now - DAY - 40 * MINUTE);
    expect(lookBackFrom(now - 20 * DAY, now)).toBe(now - LIFECYCLE_LOOKBACK_CAP_MS);
    expect(LIFECYCLE_LOOKBACK_CAP_MS).toBe(14 * DAY);
  });

  test('a marker three weeks old: the sweep reads 14 days back, by cursor pages', async () => {
    const { server, thread, write } = await clinic();
    await sweep(server);
    await write(T0 + 10 * DAY); // within 14 days of the sweep below
    const patient = ref(await seedPatient(server));
    const old = await seedThread(server, { subject: patient, recipient: [patient] });
    await seedMessage(server, old, patient, at(T0 + 2 * MINUTE)); // 21 days before it: out of reach
    vi.setSystemTime(T0 + 21 * DAY);
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ opened: 1, stoppedEarly: false });
    const scans = server.requests.filter((r) => r.key === 'GET Communication' && r.url.includes('part-of%3Amissing'));
    expect(scans.map((r) => decodeURIComponent(r.url).match(/_lastUpdated=[gl][et][^&]+/g))).toEqual([
      [`_lastUpdated=ge${at(T0 + 20 * DAY)}`],
      [`_lastUpdated=ge${at(T0 + 7 * DAY)}`, `_lastUpdated=lt${at(T0 + 20 * DAY)}`],
    ]);
    expect(scans.every((r) => r.url.includes('_sort=_lastUpdated') && !r.url.includes('_offset'))).toBe(true);
    expect(await openTasks(server, thread)).toHaveLength(1);
    expect(await openTasks(server, old)).toHaveLength(0);
  });
});
