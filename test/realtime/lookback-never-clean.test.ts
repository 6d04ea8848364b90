// A look-back holding more threads than one sweep can handle before its deadline used to leave every
// sweep unclean, the marker never moved, and every sweep re-read 14 days of threads for good (found
// by a hostile review: 150 threads written on day 0, one 100-thread chunk per sweep, the marker still
// at day 0 on days 1.5, 3 and 7). The catch-up is handled oldest first in the same order every run and
// the marker moves to the first thread not handled, so the look-back shrinks with each run that
// handles a chunk. And a catch-up whose scan is cut short records how far it got (it never did: the
// same deadline deferred its chunks, and a deferred sweep recorded nothing).
import type { Basic, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { nextMarker } from '../../src/realtime/sweep';
import { markerPosition, MARKER_REFRESH_MS, SWEEP_MARKER_IDENTIFIER } from '../../src/realtime/sweep-marker';
import type { SweepPosition } from '../../src/realtime/sweep-marker';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const T0 = Date.parse('2026-10-21T13:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const at = (ms: number): string => new Date(ms).toISOString();
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(T0);

const sweep = async (server: ServerMock): Promise<SweepSummary> => (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
const position = async (server: ServerMock): Promise<SweepPosition | undefined> =>
  markerPosition(await server.searchAll<Basic>('Basic', `identifier=${SWEEP_MARKER_IDENTIFIER.system}|${SWEEP_MARKER_IDENTIFIER.value}`));
/** The thread ids in this run's header reads. */
const headersRead = (server: ServerMock): string[] =>
  server.requests
    .filter((r) => r.caller === DEFAULT_CALLER && /^GET Communication/.test(r.key) && /[?&]_id=/.test(r.url) && !r.url.includes('_elements'))
    .flatMap((r) => decodeURIComponent(new URL(r.url, 'http://x').searchParams.get('_id') ?? '').split(','));
/** Where this run's scans of stored messages started. */
const scansFrom = (server: ServerMock): number[] =>
  server.requests
    .filter((r) => r.key === 'GET Communication' && r.url.includes('part-of%3Amissing'))
    .map((r) => Date.parse(decodeURIComponent(r.url).match(/_lastUpdated=ge([^&]+)/)?.[1] ?? ''));

async function clinic(): Promise<{ server: ServerMock; drB: ReturnType<typeof ref>; patient: ReturnType<typeof ref> }> {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB]);
  const patient = ref(await seedPatient(server));
  return { server, drB, patient };
}

describe('a look-back bigger than one sweep', () => {
  test('150 threads quiet since day 0, one chunk per sweep: the marker moves on and the look-back shrinks to a day', async () => {
    const { server, drB, patient } = await clinic();
    expect(await sweep(server)).toMatchObject({ stoppedEarly: false });
    const threads: string[] = [];
    for (let i = 0; i < 150; i++) {
      const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
      await seedMessage(server, thread, drB, at(T0 + HOUR)); // all stored at the same instant; the care team wrote last
      threads.push(thread.id);
    }
    // One sweep handles one chunk (100 threads) before its deadline: the second chunk's reads find it near.
    let headers = 0;
    server.beforeRequest = (r) => {
      if (r.caller === DEFAULT_CALLER && /Communication\?_id=/.test(r.url) && !r.url.includes('_elements') && ++headers % 2 === 0) {
        vi.setSystemTime(Date.now() + 55_000);
      }
    };
    const run = async (day: number): Promise<SweepSummary> => {
      vi.setSystemTime(T0 + day * DAY);
      headers = 0;
      server.resetCounts();
      return sweep(server);
    };

    expect(await run(1.5)).toMatchObject({ threadsRead: 100, deferred: { quota: 0, deadline: 50 }, stoppedEarly: true });
    const handled = headersRead(server).slice(0, 100);
    const moved = await position(server);
    // Up to the first thread not handled: stored at the same instant, after the 100 handled in reference order.
    expect(moved?.stored).toBe(T0 + HOUR);
    expect(handled.every((id) => `Communication/${id}` < (moved?.thread ?? ''))).toBe(true);

    // The next sweep reads only the 50 left, and is clean.
    expect(await run(3)).toMatchObject({ threadsRead: 50, deferred: { quota: 0, deadline: 0 }, stoppedEarly: false });
    const rest = headersRead(server);
    expect(rest).toHaveLength(50);
    expect(new Set([...handled, ...rest])).toEqual(new Set(threads));
    expect((await position(server))?.stored).toBe(T0 + 3 * DAY - 10 * MINUTE);

    // From then on the look-back is back near a day: nothing quiet since day 0 is read again.
    expect(await run(7)).toMatchObject({ threadsRead: 0, stoppedEarly: false });
    expect(Math.min(...scansFrom(server))).toBeGreaterThanOrEqual(T0 + 3 * DAY - 10 * MINUTE);
    expect(await run(7.25)).toMatchObject({ threadsRead: 0, stoppedEarly: false });
    expect(Math.min(...scansFrom(server))).toBe(T0 + 6.25 * DAY);
  });

  test('a catch-up scan cut short by the deadline records how far it got; the next sweep goes on from there', async () => {
    const { server, drB, patient } = await clinic();
    expect(await sweep(server)).toMatchObject({ stoppedEarly: false });
    const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
    for (let i = 0; i < 1005; i++) {
      await seedMessage(server, thread, i % 2 ? drB : patient, at(T0 + HOUR + i * MINUTE)); // the patient writes last
    }
    vi.setSystemTime(T0 + 3 * DAY); // the bot was off; the older part holds more than one page
    server.beforeRequest = (r) => {
      if (r.caller === DEFAULT_CALLER && decodeURIComponent(r.url).includes('_lastUpdated=lt')) {
        server.beforeRequest = undefined;
        vi.setSystemTime(Date.now() + 55_000); // the deadline comes during the catch-up's first page
      }
    };
    expect(await sweep(server)).toMatchObject({ stoppedEarly: true, opened: 0, deferred: { deadline: 1 } });
    const got = await position(server);
    // The first page's last message (cursor pages of 1,000): the thread's later messages are still ahead.
    expect(got).toEqual({ stored: T0 + HOUR + 999 * MINUTE });

    vi.setSystemTime(T0 + 3 * DAY + 15 * MINUTE);
    server.resetCounts();
    expect(await sweep(server)).toMatchObject({ stoppedEarly: false, opened: 1 });
    expect(scansFrom(server)).toContain(T0 + HOUR + 999 * MINUTE);
    expect((await server.searchAll<Task>('Task', `focus=Communication/${thread.id}`)).filter((t) => t.status === 'requested')).toHaveLength(1);
    expect((await position(server))?.stored).toBe(T0 + 3 * DAY + 5 * MINUTE);
  });
});

describe('where the marker goes (nextMarker)', () => {
  const now = T0;
  const least = now - DAY;
  const key = (h: number, thread: string): Required<SweepPosition> => ({ stored: least - h * HOUR, thread });
  const threads = [key(30, 'Communication/a'), key(20, 'Communication/b'), key(10, 'Communication/c')];
  const catchUp = { since: least - 40 * HOUR, threads };
  const old: SweepPosition = { stored: least - 40 * HOUR };

  test('to the first catch-up thread not handled, whatever came after it', () => {
    expect(nextMarker(old, { now, least, clean: false, catchUp, left: new Set(['Communication/b', 'Communication/x']) })).toEqual(threads[1]);
  });
  test('no further than the catch-up scan read', () => {
    const cut = { ...catchUp, stop: 'deadline' as const, reached: least - 25 * HOUR };
    expect(nextMarker(old, { now, least, clean: false, catchUp: cut, left: new Set(['Communication/c']) })).toEqual({ stored: least - 25 * HOUR });
    expect(nextMarker(old, { now, least, clean: false, catchUp: { ...cut, reached: undefined }, left: new Set() })).toBeUndefined();
  });
  test('the catch-up done: to the last day even when the last day was deferred; the sweep clean: its start', () => {
    expect(nextMarker(old, { now, least, clean: false, catchUp, left: new Set(['Communication/x']) })).toEqual({ stored: least });
    expect(nextMarker(old, { now, least, clean: true, catchUp, left: new Set() })).toEqual({ clean: now });
  });
  test('never back', () => {
    expect(nextMarker({ stored: least - 15 * HOUR }, { now, least, clean: false, catchUp, left: new Set(['Communication/b']) })).toBeUndefined();
    expect(nextMarker({ stored: least - 20 * HOUR, thread: 'Communication/c' }, { now, least, clean: false, catchUp, left: new Set(['Communication/b']) })).toBeUndefined();
  });
  test('nothing to catch up: a clean sweep records itself every MARKER_REFRESH_MS, an unclean one nothing', () => {
    const recent = { stored: now - HOUR };
    expect(nextMarker(recent, { now, least, clean: true, left: new Set() })).toBeUndefined();
    expect(nextMarker({ stored: now - MARKER_REFRESH_MS - 10 * MINUTE }, { now, least, clean: true, left: new Set() })).toEqual({ clean: now });
    expect(nextMarker(undefined, { now, least, clean: false, left: new Set(['Communication/a']) })).toBeUndefined();
  });
});
