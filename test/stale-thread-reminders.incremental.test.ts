// The stale bot's incremental run (the cron's): reads follow what can have changed, not history.
import type { Communication, Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler, reconcileDue, reconcilePolicy } from '../src/stale-thread-reminders';
import type { StaleSummary } from '../src/stale-thread-reminders';
import { businessClock, parseBusinessHours, WALL_CLOCK } from '../src/lib/business-hours';
import { clockHoursBefore, patientThread, readChunk, silenceWindow, threadsToRead, timelineOf } from '../src/stale/incremental';
import type { ChunkFacts } from '../src/stale/reads';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent, ref, REMINDER_CODE, REMINDER_SEARCH, seedMessage, seedPatient, seedPractitioner, seedTask, seedThread } from './harness/fixtures';
import type { Ref } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import type { ServerMock } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:00:00.000Z'); // 15:00 UTC: not the full-reconcile hour (03)
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const CRON = { resourceType: 'Bot', id: 'stale', name: 'stale-thread-reminders' };
/** A reminder as the bot makes it: it records when the silence began. */
const reminder = (silence: number, fields: Partial<Task> = {}): Partial<Task> => ({
  code: { coding: [REMINDER_CODE] },
  status: 'requested',
  priority: 'urgent',
  extension: [{ url: 'urn:medplum-messaging-bots:silence-started', valueInstant: ago(silence) }],
  ...fields,
});

useFixedTimeAndQuietConsole(NOW);

async function run(server: ServerMock, input: unknown = CRON, secrets: Record<string, string> = {}): Promise<StaleSummary> {
  return handler(server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '600', ...secrets }));
}

interface Clinic {
  server: ServerMock;
  patient: Ref;
  provider: Ref;
}

/**
 * A clinic whose last full reconcile finished an hour ago (the bot's marker says so): its cron runs
 * are hourly ones until the reconcile is due again.
 */
async function clinic(): Promise<Clinic> {
  const server = createServerMock();
  await server.seed({
    resourceType: 'Basic',
    code: { text: 'Stale-thread reminders: progress of the full reconcile' },
    identifier: [{ system: 'urn:medplum-messaging-bots:stale-thread-reminders', value: 'full-reconcile' }],
    extension: [{ url: 'urn:medplum-messaging-bots:stale-reconcile-finished', valueInstant: ago(HOUR) }],
  });
  return { server, patient: ref(await seedPatient(server)), provider: ref(await seedPractitioner(server)) };
}

/** A thread with `history` old messages (alternating, the care team last), then the patient `silence` ago. */
async function thread(c: Clinic, history: number, silence: number | undefined, i: number): Promise<Communication & { id: string }> {
  const opened = ago(60 * DAY + i);
  const header = await seedThread(c.server, { subject: c.patient, sent: opened, meta: { lastUpdated: opened } });
  for (let k = 0; k < history; k++) {
    await seedMessage(c.server, header, k % 2 ? c.provider : c.patient, ago(40 * DAY - k * HOUR - i));
  }
  if (silence !== undefined) {
    await seedMessage(c.server, header, c.patient, ago(silence + i));
  }
  return header;
}

async function reminders(c: Clinic): Promise<Task[]> {
  return c.server.searchAll<Task>('Task', REMINDER_SEARCH);
}

describe('cost follows what changed', () => {
  test('1,000 open threads, 100 due: 20 messages of history each cost no more than 1.2x the requests of 2, with the same reminders', { timeout: 120_000 }, async () => {
    const measure = async (history: number): Promise<{ requests: number; points: number; created: number }> => {
      const c = await clinic();
      for (let i = 0; i < 1000; i++) {
        // Every tenth thread: the patient wrote 73 h ago (due now); the others: the care team spoke last.
        await thread(c, history, i % 10 === 0 ? 73 * HOUR : undefined, i);
      }
      c.server.resetCounts();
      const summary = await run(c.server);
      return { requests: c.server.count(), points: c.server.points(), created: summary.created };
    };
    const short = await measure(2);
    const long = await measure(20);
    expect(short.created).toBe(100);
    expect(long.created).toBe(100);
    expect(long.requests).toBeLessThanOrEqual(1.2 * short.requests);
  });

  test('a steady hour: every stale thread already reminded, nothing new due: only the reminders\' threads are read', { timeout: 60_000 }, async () => {
    const c = await clinic();
    for (let i = 0; i < 300; i++) {
      const header = await thread(c, 10, i % 3 === 0 ? 5 * DAY : undefined, i);
      if (i % 3 === 0) {
        await seedTask(c.server, header, reminder(5 * DAY + i, { authoredOn: ago(HOUR) }));
      }
    }
    c.server.resetCounts();
    const summary = await run(c.server);
    expect(summary).toMatchObject({ mode: 'incremental', created: 0, threadsRead: 100, alreadyReminded: 100 });
    // The marker, the window's two searches (messages with sent, without), the reminders, and three
    // searches per hundred reminded threads.
    expect(c.server.count()).toBeLessThanOrEqual(4 + 3 * 1);
  });
});

describe('what an incremental run decides, as the full scan would', () => {
  test('a thread due now gets its reminder; a thread answered after the patient wrote does not', async () => {
    const c = await clinic();
    const due = await thread(c, 4, 80 * HOUR, 0);
    const answered = await thread(c, 4, 80 * HOUR, 1);
    await seedMessage(c.server, answered, c.provider, ago(2 * HOUR));
    expect(await run(c.server)).toMatchObject({ mode: 'incremental', created: 1 });
    expect((await reminders(c)).map((r) => r.focus?.reference)).toEqual([`Communication/${due.id}`]);
  });

  test('open reminders are escalated, closed by a reply after the silence began, and cancelled when the thread closed', async () => {
    const c = await clinic();
    const silent = await thread(c, 2, 10 * DAY, 0);
    const old = await seedTask(c.server, silent, reminder(10 * DAY, { authoredOn: ago(30 * HOUR) }));
    const replied = await thread(c, 2, 9 * DAY, 1);
    const answered = await seedTask(c.server, replied, reminder(9 * DAY + 1, { authoredOn: ago(HOUR) }));
    await seedMessage(c.server, replied, c.provider, ago(8 * DAY)); // sent before the reminder existed, after the silence began
    const closedThread = await thread(c, 2, 10 * DAY, 2);
    const orphan = await seedTask(c.server, closedThread, reminder(10 * DAY + 2, { authoredOn: ago(HOUR) }));
    await c.server.update({ ...closedThread, status: 'completed' });
    expect(await run(c.server)).toMatchObject({ escalated: 1, closed: 1, cancelled: 1, created: 0 });
    expect((await c.server.read<Task>('Task', old.id)).priority).toBe('asap');
    expect((await c.server.read<Task>('Task', answered.id)).status).toBe('completed');
    expect((await c.server.read<Task>('Task', orphan.id)).status).toBe('cancelled');
  });

  test('a reminder made by hand (no record of when the silence began) has its whole thread read', async () => {
    const c = await clinic();
    const header = await thread(c, 2, 10 * DAY, 0);
    const byHand = await seedTask(c.server, header, { code: { coding: [REMINDER_CODE] }, status: 'requested', priority: 'urgent', authoredOn: ago(HOUR) });
    expect(await run(c.server)).toMatchObject({ alreadyReminded: 1, created: 0 });
    await seedMessage(c.server, header, c.provider, ago(0));
    expect(await run(c.server)).toMatchObject({ closed: 1 });
    expect((await c.server.read<Task>('Task', byHand.id)).status).toBe('completed');
  });

  test('a thread that went stale outside the window: the hourly part misses it, the full reconcile finds it', async () => {
    const c = await clinic();
    const forgotten = await thread(c, 3, 8 * DAY, 0);
    expect(await run(c.server)).toMatchObject({ mode: 'incremental', created: 0 });
    expect(await run(c.server, { full: true })).toMatchObject({ mode: 'full', created: 1 });
    expect((await reminders(c))[0].focus).toEqual({ reference: `Communication/${forgotten.id}` });
  });

  test('the daily full reconcile: the cron run of STALE_FULL_RECONCILE_HOUR scans everything', async () => {
    const c = await clinic();
    await thread(c, 3, 8 * DAY, 0);
    expect(await run(c.server, CRON, { STALE_FULL_RECONCILE_HOUR: '15' })).toMatchObject({ mode: 'full', created: 1 });
  });

  test('the lookback covers missed runs: a thread that crossed its threshold 20 hours ago is still found', async () => {
    const c = await clinic();
    await thread(c, 3, 92 * HOUR, 0);
    expect(await run(c.server)).toMatchObject({ created: 1 });
    const other = await clinic();
    await thread(other, 3, 92 * HOUR, 0);
    expect(await run(other.server, CRON, { STALE_LOOKBACK_HOURS: '12' })).toMatchObject({ created: 0 });
  });

  test('a deadline between chunks keeps what was written and says what is left', async () => {
    const c = await clinic();
    for (let i = 0; i < 150; i++) {
      await thread(c, 0, 75 * HOUR, i);
    }
    let writes = 0;
    c.server.beforeRequest = (r) => {
      if (r.key === 'POST batch' && ++writes === 1) {
        vi.setSystemTime(new Date(Date.now() + 600_000)); // the first chunk's writes take the whole run
      }
    };
    const summary = await run(c.server);
    expect(summary.created).toBe(100);
    expect(summary).toMatchObject({ stoppedEarly: true, deferred: { deadline: 50 } });
  });
});

describe('which run is which', () => {
  test('the cron (the Bot, or a Cron resource) reconciles when due; {"full": true} and a run by hand always; {"full": false} never', () => {
    expect(reconcilePolicy(CRON)).toBe('if-due');
    expect(reconcilePolicy({ resourceType: 'Cron' })).toBe('if-due');
    expect(reconcilePolicy({ full: true })).toBe('always');
    expect(reconcilePolicy({ full: false })).toBe('never');
    expect(reconcilePolicy({})).toBe('always');
    expect(reconcilePolicy(undefined)).toBe('always');
    // Due: in the full hour unless a pass finished within the hour; at any hour a day after the last.
    const at3 = Date.parse('2026-11-27T03:30:00Z');
    expect(reconcileDue({ finished: NOW - HOUR }, NOW, 3)).toBe(false);
    expect(reconcileDue({ finished: at3 - 2 * HOUR }, at3, 3)).toBe(true);
    expect(reconcileDue({ finished: at3 - 10 * 60_000 }, at3, 3)).toBe(false);
  });

  test('the window: between the longest threshold plus the lookback and the shortest, in business hours when set', () => {
    const rules = [
      { index: 0, afterHours: 72, escalateAfterHours: 24, reminderPriority: 'urgent' as const },
      { index: 1, afterHours: 4, escalateAfterHours: 24, reminderPriority: 'urgent' as const },
    ];
    expect(silenceWindow(rules, WALL_CLOCK, NOW, 24)).toEqual({ from: NOW - 96 * HOUR, to: NOW - 4 * HOUR });
    const hours = parseBusinessHours({ timeZone: 'UTC', hours: { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']], wed: [['09:00', '17:00']], thu: [['09:00', '17:00']], fri: [['09:00', '17:00']] } });
    if ('error' in hours) {
      throw new Error(hours.error);
    }
    const clock = businessClock(hours.hours);
    // Friday 15:00: 16 open hours back is Wednesday 15:00.
    const back = clockHoursBefore(clock, NOW, 16);
    expect(Math.abs(back - Date.parse('2026-11-25T15:00:00Z'))).toBeLessThanOrEqual(60_000);
    expect(clock.hoursBetween(back, NOW, 16)).toBeGreaterThanOrEqual(16);
  });
});

describe('the incremental pieces, alone', () => {
  test('which Communications can open a silence: a patient-side message or header, not retracted', () => {
    const thread = { reference: 'Communication/h' };
    expect(patientThread({ resourceType: 'Communication', id: 'm', status: 'completed', partOf: [thread], sender: { reference: 'Patient/p' } })).toBe('Communication/h');
    expect(patientThread({ resourceType: 'Communication', id: 'm', status: 'completed', partOf: [thread], sender: { reference: 'RelatedPerson/r' } })).toBe('Communication/h');
    expect(patientThread({ resourceType: 'Communication', id: 'h2', status: 'in-progress', sender: { reference: 'Patient/p' } })).toBe('Communication/h2');
    expect(patientThread({ resourceType: 'Communication', id: 'm', status: 'entered-in-error', partOf: [thread], sender: { reference: 'Patient/p' } })).toBeUndefined();
    expect(patientThread({ resourceType: 'Communication', id: 'm', status: 'completed', partOf: [thread], sender: { reference: 'Practitioner/d' } })).toBeUndefined();
    expect(patientThread({ resourceType: 'Communication', id: 'm', status: 'completed', partOf: [{ reference: 'Task/t' }], sender: { reference: 'Patient/p' } })).toBeUndefined();
  });

  test('a thread\'s timeline from what was read: the header when someone wrote it, retracted messages out, patient times kept', () => {
    const header = { resourceType: 'Communication' as const, id: 'h', status: 'in-progress' as const, sender: { reference: 'Patient/p' }, sent: ago(3 * DAY) };
    const msg = (id: string, sender: string, at: number, status: Communication['status'] = 'completed') => ({ resourceType: 'Communication' as const, id, status, sender: { reference: sender }, sent: ago(at), partOf: [{ reference: 'Communication/h' }] });
    const { timeline, patientTimes } = timelineOf(header, [msg('a', 'Practitioner/d', 2 * DAY), msg('b', 'Patient/p', DAY), msg('c', 'Practitioner/d', HOUR, 'entered-in-error'), msg('d', 'Device/x', 30 * 60_000)]);
    expect(timeline.last?.ref).toBe('Communication/b');
    expect(timeline.ignored).toBe(1);
    expect([...patientTimes]).toEqual([['Communication/h', NOW - 3 * DAY], ['Communication/b', NOW - DAY]]);
    expect(timelineOf({ ...header, sender: undefined }, []).timeline.last).toBeUndefined();
  });

  test('threads to read: the window\'s patient messages from the window\'s start, reminders from their silence (by hand: the whole thread)', async () => {
    const c = await clinic();
    const window = { from: NOW - 96 * HOUR, to: NOW - 72 * HOUR };
    const due = await thread(c, 0, 80 * HOUR, 0);
    const answeredInWindow = await thread(c, 0, undefined, 1);
    await seedMessage(c.server, answeredInWindow, c.provider, ago(80 * HOUR));
    const reminded = await thread(c, 0, 10 * DAY, 2);
    await seedTask(c.server, reminded, reminder(10 * DAY + 2));
    const byHand = await thread(c, 0, 9 * DAY, 3);
    await seedTask(c.server, byHand, { code: { coding: [REMINDER_CODE] }, status: 'requested', authoredOn: ago(HOUR) });
    await c.server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', code: { coding: [REMINDER_CODE] }, focus: { reference: 'Patient/x' } });
    const found = await threadsToRead(c.server.medplum, window, `${REMINDER_CODE.system}|${REMINDER_CODE.code}`, { check: () => undefined }, { warn: () => undefined });
    expect(typeof found !== 'string' && Object.fromEntries(found)).toEqual({
      [`Communication/${due.id}`]: window.from,
      [`Communication/${reminded.id}`]: NOW - 10 * DAY - 2,
      [`Communication/${byHand.id}`]: 0,
    });
    expect(await threadsToRead(c.server.medplum, window, `${REMINDER_CODE.system}|${REMINDER_CODE.code}`, { check: () => 'deadline' }, { warn: () => undefined })).toBe('deadline');
  });

  test('a chunk: closed threads are listed and their messages not read; messages from the earliest instant of the open ones', async () => {
    const c = await clinic();
    const open = await thread(c, 0, 5 * DAY, 0);
    await seedMessage(c.server, open, c.provider, ago(40 * DAY));
    const closed = await thread(c, 0, HOUR, 1);
    await c.server.update({ ...closed, status: 'completed' });
    c.server.resetCounts();
    const chunk = (await readChunk(c.server.medplum, [[`Communication/${open.id}`, NOW - 6 * DAY], [`Communication/${closed.id}`, NOW - 100 * DAY]])) as ChunkFacts;
    expect([...chunk.headers.keys()]).toEqual([`Communication/${open.id}`]);
    expect(chunk.closed).toEqual([`Communication/${closed.id}`]);
    expect(chunk.messages.map((m) => m.sent)).toEqual([ago(5 * DAY)]);
  });

  test('a clinic with no open hours at all: the window opens a year back, no further', () => {
    const hours = parseBusinessHours({ timeZone: 'UTC', hours: {} });
    if ('error' in hours) {
      throw new Error(hours.error);
    }
    expect(clockHoursBefore(businessClock(hours.hours), NOW, 10)).toBe(NOW - 10 * HOUR - 365 * DAY);
    expect(clockHoursBefore(WALL_CLOCK, NOW, 10)).toBe(NOW - 10 * HOUR);
  });
});
