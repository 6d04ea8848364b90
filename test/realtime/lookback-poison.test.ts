// After a gap, the sweep's catch-up (threads with a message stored since its marker, older than the
// last day) must neither starve today's patients nor be pinned by one thread whose write fails every
// time (a 400 on its Task create: an invalid reference, a policy's criteria). Found by a hostile
// review: the catch-up went first and a failed thread held the marker, so a sweep that could handle
// one chunk spent every run redoing it and a patient who wrote today got no Task for days.
import type { Basic, Bundle, Task } from '@medplum/fhirtypes';
import { expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { failsForGood, takeTurns } from '../../src/realtime/sweep';
import { markerPosition, SWEEP_MARKER_IDENTIFIER } from '../../src/realtime/sweep-marker';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';

const T0 = Date.parse('2026-10-21T13:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (ms: number): string => new Date(ms).toISOString();
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(T0);

test("a catch-up thread that fails for good neither holds the marker nor keeps today's patient waiting", async () => {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB]);
  const patient = ref(await seedPatient(server));
  const sweep = async (): Promise<SweepSummary> => {
    try {
      return (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
    } catch (err) {
      return { threadsRead: -1, failed: -1, deferred: String(err).slice(0, 60) } as unknown as SweepSummary;
    }
  };
  expect(await sweep()).toMatchObject({ stoppedEarly: false });

  // The poison: a patient's message whose Task create is refused every time (400).
  const poison = await seedThread(server, { subject: patient, recipient: [patient, drB] });
  await seedMessage(server, poison, patient, at(T0 + HOUR));
  for (let i = 0; i < 150; i++) {
    const t = await seedThread(server, { subject: patient, recipient: [patient, drB] });
    await seedMessage(server, t, drB, at(T0 + 2 * HOUR));
  }
  const orig = server.medplum.executeBatch.bind(server.medplum);
  server.medplum.executeBatch = (async (b: Bundle) => {
    const isPoison = (e: NonNullable<Bundle['entry']>[number]): boolean =>
      e.request?.method === 'POST' && (e.resource as Task | undefined)?.focus?.reference === `Communication/${poison.id}`;
    const rest = { ...b, entry: (b.entry ?? []).filter((e) => !isPoison(e)) };
    const res = rest.entry?.length ? await orig(rest) : { resourceType: 'Bundle', type: 'batch-response', entry: [] };
    const out = [...(res.entry ?? [])];
    (b.entry ?? []).forEach((e, i) => {
      if (isPoison(e)) out.splice(i, 0, { response: { status: '400', outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text: 'bad reference' } }] } } });
    });
    return { ...res, entry: out };
  }) as typeof server.medplum.executeBatch;

  // One chunk per sweep before the deadline (as test/realtime/lookback-never-clean.test.ts).
  let headers = 0;
  server.beforeRequest = (r) => {
    if (r.caller === DEFAULT_CALLER && /Communication\?_id=/.test(r.url) && !r.url.includes('_elements') && ++headers % 2 === 0) {
      vi.setSystemTime(Date.now() + 55_000);
    }
  };
  // Today's patient (event lost) on day 3.
  const today = await seedThread(server, { subject: patient, recipient: [patient, drB] });
  await seedMessage(server, today, patient, at(T0 + 3 * DAY - HOUR));

  const marker = async (): Promise<ReturnType<typeof markerPosition>> =>
    markerPosition(await server.searchAll<Basic>('Basic', `identifier=${SWEEP_MARKER_IDENTIFIER.system}|${SWEEP_MARKER_IDENTIFIER.value}`));
  const tasksOf = (thread: { id?: string }): Promise<Task[]> => server.searchAll<Task>('Task', `focus=Communication/${thread.id}`);

  // The first sweep back handles today's threads before (and between) the catch-up's chunks.
  vi.setSystemTime(T0 + 3 * DAY);
  headers = 0;
  await sweep();
  expect(await tasksOf(today)).toHaveLength(1);

  // The poison's 400 is logged and counted, and no longer holds the marker: it moves on past it.
  for (const day of [3.25, 4, 5]) {
    vi.setSystemTime(T0 + day * DAY);
    headers = 0;
    await sweep();
  }
  expect(await tasksOf(poison)).toHaveLength(0);
  const position = await marker();
  expect(position?.thread).not.toBe(`Communication/${poison.id}`);
  expect(position?.stored).toBeGreaterThan(T0 + 2 * HOUR);
});

test('failsForGood: a 4xx other than a timeout or the quota; takeTurns: one chunk of each in turn', () => {
  expect(['400', '403', '404', '410', '422'].map(failsForGood)).toEqual([true, true, true, true, true]);
  expect(['408', '429', '500', '503', 'error', 'none'].map(failsForGood)).toEqual([false, false, false, false, false, false]);
  expect(takeTurns<number | string>([1, 2, 3], ['a'])).toEqual([1, 'a', 2, 3]);
  expect(takeTurns([], ['a', 'b'])).toEqual(['a', 'b']);
});
