// The what-if on the synthetic clinic: identical settings show no difference, and each change shows
// the difference a hand count over the same script gives (counted without the bots' code).
import { beforeAll, describe, expect, test } from 'vitest';
import { whatIf } from '../../src/what-if/compare';
import { main } from '../../src/what-if/cli';
import { readPeriod } from '../../src/what-if/reads';
import type { PeriodRead } from '../../src/what-if/reads';
import type { WhatIfRow } from '../../src/what-if/rows';
import { applyChanges, botSettings, describeChanges } from '../../src/what-if/settings';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { DAY, seedScript, writeScript } from './clinic';
import { handReminders, onWeekend, wallHours, weekdayHours } from './hand-count';

const FROM = Date.parse('2026-10-05T00:00:00Z'); // a Monday: the clinic starts here
const SINCE = FROM + 14 * DAY;
const UNTIL = SINCE + 28 * DAY;
const script = writeScript({ seed: 30, start: FROM, days: 42, threads: 40 });
const WEEKDAYS_ONLY = JSON.stringify({
  timeZone: 'UTC',
  hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri'].map((d) => [d, [['00:00', '24:00']]])),
});
const quiet = { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined };

let server: ServerMock;
let read: PeriodRead;

beforeAll(async () => {
  server = createServerMock();
  await seedScript(server, script);
  const medplum = server.clientAs('admin');
  read = await readPeriod(medplum, new QuotaPacer(medplum), quiet, { from: FROM, since: SINCE, until: UNTIL }, []);
}, 60_000);

const run = (current: Record<string, string>, changes: Record<string, string | null>) =>
  whatIf(read, botSettings(current), botSettings(applyChanges(current, changes)), describeChanges(current, changes));
const inPeriod = (at: number): boolean => at >= SINCE && at < UNTIL;
const strip = (rows: WhatIfRow[], side: string) => rows.filter((r) => r.settings === side).map(({ settings: _, ...r }) => r);

describe('what-if on the synthetic clinic', { timeout: 120_000 }, () => {
  test('the clinic has what the checks need: reminders under either threshold, escalations on weekends', () => {
    const reminders = handReminders(script, { after: 72, every: 24, open: wallHours }, UNTIL).filter((r) => inPeriod(r.created));
    expect(reminders.length).toBeGreaterThan(10);
    expect(reminders.flatMap((r) => r.escalations).filter((at) => inPeriod(at) && onWeekend(at)).length).toBeGreaterThan(2);
  });

  test('replaying identical settings shows zero difference', () => {
    const result = run({ STALE_AFTER_HOURS: '72' }, {});
    expect(result.totals.current.reminders_created).toBeGreaterThan(0);
    expect(strip(result.rows, 'proposed')).toEqual(strip(result.rows, 'current'));
    expect(result.totals.proposed).toEqual(result.totals.current);
    expect(result.events.proposed).toEqual(result.events.current);
  });

  test('halving STALE_AFTER_HOURS shows more reminders, by the hand count', () => {
    const result = run({ STALE_AFTER_HOURS: '72' }, { STALE_AFTER_HOURS: '36' });
    const hand = (after: number): number => handReminders(script, { after, every: 24, open: wallHours }, UNTIL).filter((r) => inPeriod(r.created)).length;
    expect(result.totals.current.reminders_created).toBe(hand(72));
    expect(result.totals.proposed.reminders_created).toBe(hand(36));
    expect(result.totals.proposed.reminders_created - result.totals.current.reminders_created).toBe(hand(36) - hand(72));
    expect(hand(36)).toBeGreaterThan(hand(72));
  });

  test('every reminder and escalation of the replay is the hand count\'s, at the same hour', () => {
    const result = run({}, {});
    const hand = handReminders(script, { after: 72, every: 24, open: wallHours }, UNTIL);
    const created = result.events.current.filter((e) => e.kind === 'reminder-created' && inPeriod(e.at)).map((e) => e.at).sort();
    expect(created).toEqual(hand.map((r) => r.created).filter(inPeriod).sort());
    const escalated = result.events.current.filter((e) => e.kind === 'escalated' && inPeriod(e.at)).map((e) => e.at).sort();
    expect(escalated).toEqual(hand.flatMap((r) => r.escalations).filter(inPeriod).sort());
  });

  test('BUSINESS_HOURS closing weekends shows fewer weekend escalations, by the hand count', () => {
    const result = run({}, { BUSINESS_HOURS: WEEKDAYS_ONLY });
    const weekend = (open: typeof wallHours): number =>
      handReminders(script, { after: 72, every: 24, open }, UNTIL)
        .flatMap((r) => r.escalations)
        .filter((at) => inPeriod(at) && onWeekend(at)).length;
    expect(result.weekendEscalations.zone).toBe('UTC');
    expect(result.weekendEscalations.current).toBe(weekend(wallHours));
    expect(result.weekendEscalations.proposed).toBe(weekend(weekdayHours));
    expect(result.weekendEscalations.proposed).toBeLessThan(result.weekendEscalations.current);
    expect(result.totals.proposed.reminders_created).toBe(
      handReminders(script, { after: 72, every: 24, open: weekdayHours }, UNTIL).filter((r) => inPeriod(r.created)).length
    );
  });

  test('the command reads, replays and prints the rows as JSON, writing nothing to the Project', async () => {
    const files = new Map([['proposed.json', JSON.stringify({ STALE_AFTER_HOURS: 36 })]]);
    const out: string[] = [];
    const err: string[] = [];
    await server.medplum.post('admin/projects/123/secrets', [{ name: 'STALE_AFTER_HOURS', valueString: '72' }, { name: 'PARTNER_API_KEY', valueString: 'PHI-SECRET' }]);
    server.resetCounts();
    const code = await main(['--since', '2026-10-19', '--until', '2026-11-16', '--proposed', 'proposed.json', '--format', 'json'], {
      medplum: server.medplum,
      now: new Date(UNTIL),
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      progress: quiet,
      readFile: (p) => files.get(p) as string,
    });
    expect(err.join('')).not.toContain('failed');
    expect(code).toBe(0);
    const rows = JSON.parse(out.join('')) as WhatIfRow[];
    const sum = (side: string): number => rows.filter((r) => r.settings === side).reduce((n, r) => n + r.reminders_created, 0);
    expect(sum('proposed')).toBeGreaterThan(sum('current'));
    expect(err.join('')).toContain('STALE_AFTER_HOURS: 72 -> 36');
    expect(err.join('')).not.toContain('PHI-');
    expect(server.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });
});
