// The replay runs the scheduled bots when they ran (their run history), not only at exact hours, and
// a message after the last scheduled run of the period still goes through the event path. On a real
// server the reminders bot ran every 10 minutes with a 15-minute threshold: replayed hourly, the
// reminders' escalations came out fewer than the bots made, and messages of the period's last
// minutes opened no response Task in the replay though the bots opened one (#30).
import type { AuditEvent, Communication } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { messagePoint } from '../../src/lib/thread';
import { replay, runTicks } from '../../src/what-if/replay';
import type { PeriodFacts } from '../../src/what-if/replay';
import { runInstants } from '../../src/what-if/runs';
import { botSettings } from '../../src/what-if/settings';

const T0 = Date.parse('2026-12-06T07:00:00Z');
const MIN = 60_000;
const patient = { reference: 'Patient/p1' };
const doctor = { reference: 'Practitioner/d1' };
const header: Communication & { id: string } = { resourceType: 'Communication', id: 'h1', status: 'in-progress', subject: patient, recipient: [patient, doctor] };
const message = (id: string, at: number, sender = patient): Communication & { id: string } => ({
  resourceType: 'Communication',
  id,
  status: 'in-progress',
  partOf: [{ reference: 'Communication/h1' }],
  sender,
  sent: new Date(at).toISOString(),
});
const settings = botSettings({ STALE_AFTER_HOURS: '0.25', ESCALATE_AFTER_HOURS: '0.25', RESPONSE_TASKS: 'on' });
const facts = (until: number, runs?: PeriodFacts['runs']): PeriodFacts => ({
  from: T0,
  since: T0,
  until,
  threads: [{ header, points: [messagePoint(message('m1', T0 + 5 * MIN))] }],
  outsideTasks: [],
  owners: new Map(),
  runs,
});

describe('the scheduled runs of the replay', () => {
  test('without a run history, at every exact hour of the window', () => {
    expect(runTicks({ from: T0 - 1, until: T0 + 2 * 3_600_000 }).map((t) => [t.at - T0, t.sweep, t.remind])).toEqual([
      [0, true, true],
      [3_600_000, true, true],
    ]);
  });

  test('with one, at the instants the bots ran, a sweep and a reminders run at one instant together', () => {
    const ticks = runTicks({ from: T0, until: T0 + 60 * MIN, runs: { sweep: [T0 + 15 * MIN, T0 + 30 * MIN, T0 + 90 * MIN], reminders: [T0 - MIN, T0 + 10 * MIN, T0 + 30 * MIN] } });
    expect(ticks.map((t) => [(t.at - T0) / MIN, t.sweep, t.remind])).toEqual([
      [10, false, true],
      [15, true, false],
      [30, true, true],
    ]);
  });

  test('reminders runs every 10 minutes: the reminder and one escalation per run, as the bots made them', () => {
    const runs = { sweep: [], reminders: [10, 20, 30, 40, 50].map((m) => T0 + m * MIN) };
    const { events } = replay(facts(T0 + 55 * MIN, runs), settings);
    const created = events.filter((e) => e.kind === 'reminder-created');
    const escalated = events.filter((e) => e.kind === 'escalated');
    // The patient wrote at :05: stale from :20, so the reminder at :20; then a step per run, up to
    // one per 15 minutes it has been open: :40 (20 minutes), :50 (30 minutes).
    expect(created.map((e) => (e.at - T0) / MIN)).toEqual([20]);
    expect(escalated.map((e) => (e.at - T0) / MIN)).toEqual([40, 50]);
    // Replayed at exact hours, the same window has no run at all after the message.
    expect(replay(facts(T0 + 55 * MIN), settings).events.filter((e) => e.kind === 'reminder-created')).toEqual([]);
  });

  test("a message after the period's last scheduled run still opens its response Task", () => {
    const { events } = replay(facts(T0 + 30 * MIN, { sweep: [T0 + MIN], reminders: [] }), settings);
    expect(events.filter((e) => e.kind === 'response-opened').map((e) => (e.at - T0) / MIN)).toEqual([5]);
    const hourly = replay(facts(T0 + 30 * MIN), settings).events;
    expect(hourly.filter((e) => e.kind === 'response-opened')).toHaveLength(1);
  });
});

describe('run instants from the run history', () => {
  const audit = (start: string, log: string, outcome = '0'): AuditEvent =>
    ({ resourceType: 'AuditEvent', type: { code: 'execute' }, recorded: start, period: { start }, outcome, outcomeDesc: log, agent: [], source: { observer: {} } }) as AuditEvent;
  test('sweeps and reminders runs by their summary line; event runs, runs outside the window and runs that logged nothing are left out', () => {
    const events = [
      audit('2026-12-06T07:15:02Z', '[ooo-reroute] sweep: tasks=3 threads=2 waiting=1 owners=1 rerouted=0'),
      audit('2026-12-06T07:10:01Z', '[stale-thread-reminders] threads=4 stale=1 created=1 episodeExists=0 mode=incremental'),
      audit('2026-12-06T07:06:49Z', '[ooo-reroute] Communication/a Communication/b: examined=0 rerouted=0 kept=0 opened=1'),
      audit('2026-12-06T06:50:00Z', '[ooo-reroute] sweep: tasks=0 threads=0 waiting=0 owners=0'),
      audit('2026-12-06T07:20:00Z', 'Error: timeout', '4'),
      audit('2026-12-06T07:03:00Z', '[stale-thread-reminders] threads=4 stale=0 created=0 episodeExists=0 mode=full'),
    ];
    const runs = runInstants(events, { from: T0, until: T0 + 3_600_000 });
    expect(runs.sweep.map((t) => new Date(t).toISOString())).toEqual(['2026-12-06T07:15:02.000Z']);
    expect(runs.reminders.map((t) => new Date(t).toISOString())).toEqual(['2026-12-06T07:03:00.000Z', '2026-12-06T07:10:01.000Z']);
  });
});
