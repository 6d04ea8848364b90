import { describe, expect, test } from 'vitest';
import { businessClock, parseBusinessHours, WALL_CLOCK } from '../../src/lib/business-hours';
import type { BusinessHours } from '../../src/lib/business-hours';

const weekdays = (intervals: string[][]) => ({ mon: intervals, tue: intervals, wed: intervals, thu: intervals, fri: intervals });

function hours(value: unknown): BusinessHours {
  const parsed = parseBusinessHours(value);
  if ('error' in parsed) {
    throw new Error(parsed.error);
  }
  return parsed.hours;
}

const between = (h: BusinessHours, from: string, to: string): number => businessClock(h).hoursBetween(Date.parse(from), Date.parse(to));

describe('business hours between two instants', () => {
  const ny = hours({ timeZone: 'America/New_York', hours: weekdays([['08:00', '17:00']]) });

  test('a weekday: only the open part counts', () => {
    // Tuesday 2026-11-24, 07:00 to 18:00 in New York (12:00Z to 23:00Z).
    expect(between(ny, '2026-11-24T12:00:00Z', '2026-11-24T23:00:00Z')).toBe(9);
    expect(between(ny, '2026-11-24T15:30:00Z', '2026-11-24T16:00:00Z')).toBe(0.5);
  });

  test('Friday evening to Monday evening is one open day, not 72 hours', () => {
    // Friday 2026-11-20 18:00 to Monday 2026-11-23 18:00 in New York.
    expect(between(ny, '2026-11-20T23:00:00Z', '2026-11-23T23:00:00Z')).toBe(9);
    expect(WALL_CLOCK.hoursBetween(Date.parse('2026-11-20T23:00:00Z'), Date.parse('2026-11-23T23:00:00Z'))).toBe(72);
  });

  test('a closed date (holiday) counts nothing', () => {
    const withHoliday = hours({ timeZone: 'America/New_York', hours: weekdays([['08:00', '17:00']]), closed: ['2026-11-26'] });
    // Wednesday 08:00 to Friday 08:00: Thanksgiving Thursday is closed.
    expect(between(withHoliday, '2026-11-25T13:00:00Z', '2026-11-27T13:00:00Z')).toBe(9);
    expect(between(ny, '2026-11-25T13:00:00Z', '2026-11-27T13:00:00Z')).toBe(18);
  });

  test('several intervals a day, and an interval ending at 24:00', () => {
    const split = hours({ timeZone: 'UTC', hours: { mon: [['08:00', '12:00'], ['13:00', '24:00']], tue: [['00:00', '02:00']] } });
    // Monday 2026-11-23 00:00 to Tuesday 12:00: 4 + 11 + 2.
    expect(between(split, '2026-11-23T00:00:00Z', '2026-11-24T12:00:00Z')).toBe(17);
  });

  test('spring forward: an open day that loses an hour counts its real length', () => {
    const allDay = hours({ timeZone: 'America/New_York', hours: { sun: [['00:00', '24:00']] } });
    expect(between(allDay, '2026-03-08T00:00:00Z', '2026-03-09T12:00:00Z')).toBe(23);
  });

  test('fall back: an open day that gains an hour counts its real length', () => {
    const allDay = hours({ timeZone: 'Europe/Berlin', hours: { sun: [['00:00', '24:00']] } });
    expect(between(allDay, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z')).toBe(25);
    // An interval across the repeated hour: 01:00-04:00 local on that day is 4 hours.
    const night = hours({ timeZone: 'Europe/Berlin', hours: { sun: [['01:00', '04:00']] } });
    expect(between(night, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z')).toBe(4);
  });

  test('east of UTC: the local day starts the evening before in UTC', () => {
    const tokyo = hours({ timeZone: 'Asia/Tokyo', hours: weekdays([['09:00', '18:00']]) });
    // Monday 2026-11-23 09:00-18:00 in Tokyo is Monday 00:00Z-09:00Z.
    expect(between(tokyo, '2026-11-22T20:00:00Z', '2026-11-23T05:00:00Z')).toBe(5);
  });

  test('west of UTC: a local Friday afternoon is Friday evening in UTC', () => {
    const la = hours({ timeZone: 'America/Los_Angeles', hours: weekdays([['09:00', '17:00']]) });
    // Friday 2026-11-27 16:00 to Saturday 10:00 in Los Angeles: one open hour.
    expect(between(la, '2026-11-28T00:00:00Z', '2026-11-28T18:00:00Z')).toBe(1);
  });

  test('counting stops at the cap, and nothing is counted backwards', () => {
    const clock = businessClock(ny);
    expect(clock.hoursBetween(Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-12-31T00:00:00Z'), 10)).toBeGreaterThanOrEqual(10);
    expect(clock.hoursBetween(Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-12-31T00:00:00Z'), 10)).toBeLessThan(20);
    expect(clock.hoursBetween(Date.parse('2026-11-24T23:00:00Z'), Date.parse('2026-11-24T12:00:00Z'))).toBe(0);
  });
});

describe('parseBusinessHours says what is wrong', () => {
  test.each<[string, unknown, string]>([
    ['not an object', [], 'must be a JSON object'],
    ['an unknown key', { timeZone: 'UTC', hours: {}, open: 1 }, 'unknown key(s): open'],
    ['a zone that is not IANA', { timeZone: 'Eastern', hours: {} }, 'timeZone "Eastern" is not an IANA time zone'],
    ['an unknown day', { timeZone: 'UTC', hours: { monday: [] } }, 'unknown day "monday"'],
    ['an interval crossing midnight', { timeZone: 'UTC', hours: { fri: [['22:00', '02:00']] } }, 'may not cross midnight; write 22:00-24:00 on this day and 00:00-02:00 on the next'],
    ['a time past 24:00', { timeZone: 'UTC', hours: { fri: [['08:00', '24:30']] } }, 'times are "HH:MM", from 00:00 to 24:00'],
    ['a malformed time', { timeZone: 'UTC', hours: { fri: [['8am', '17:00']] } }, 'times are "HH:MM"'],
    ['overlapping intervals', { timeZone: 'UTC', hours: { fri: [['08:00', '12:00'], ['11:00', '13:00']] } }, 'hours.fri: intervals overlap'],
    ['a bad closed date', { timeZone: 'UTC', hours: {}, closed: ['2026-02-30'] }, 'closed must be a list of dates'],
    ['hours missing', { timeZone: 'UTC' }, 'hours must be an object'],
  ])('%s', (_name, value, message) => {
    const parsed = parseBusinessHours(value);
    expect('error' in parsed && parsed.error).toContain(message);
  });

  test.each<[unknown, string]>([
    [null, 'must be a JSON object with timeZone, hours and optionally closed'],
    ['UTC', 'must be a JSON object with timeZone, hours and optionally closed'],
    [{ timeZone: 'UTC', hours: {}, open: 1, days: 2 }, 'unknown key(s): open, days'],
    [{ timeZone: 5, hours: {} }, 'timeZone 5 is not an IANA time zone (e.g. "America/New_York")'],
    [{ timeZone: 'UTC', hours: [] }, 'hours must be an object with keys mon, tue, wed, thu, fri, sat, sun'],
    [{ timeZone: 'UTC', hours: 'weekdays' }, 'hours must be an object with keys mon, tue, wed, thu, fri, sat, sun'],
    [{ timeZone: 'UTC', hours: { fri: '08:00-17:00' } }, 'hours.fri must be a list of ["HH:MM","HH:MM"] intervals'],
    [{ timeZone: 'UTC', hours: { fri: ['08:00-17:00'] } }, 'hours.fri: "08:00-17:00" is not an ["HH:MM","HH:MM"] interval'],
    [{ timeZone: 'UTC', hours: { fri: [['08:00', '12:00', '17:00']] } }, 'hours.fri: ["08:00","12:00","17:00"] is not an ["HH:MM","HH:MM"] interval'],
    [{ timeZone: 'UTC', hours: { fri: [['08:00', '08:00']] } }, 'hours.fri: 08:00-08:00 ends before it starts: an interval may not cross midnight; write 08:00-24:00 on this day and 00:00-08:00 on the next'],
    [{ timeZone: 'UTC', hours: { fri: [['08:60', '17:00']] } }, 'hours.fri: ["08:60","17:00"]: times are "HH:MM", from 00:00 to 24:00'],
    [{ timeZone: 'UTC', hours: { fri: [['108:00', '17:00']] } }, 'hours.fri: ["108:00","17:00"]: times are "HH:MM", from 00:00 to 24:00'],
    [{ timeZone: 'UTC', hours: { fri: [['08:00', '17:001']] } }, 'hours.fri: ["08:00","17:001"]: times are "HH:MM", from 00:00 to 24:00'],
    [{ timeZone: 'UTC', hours: { fri: [[8, '17:00']] } }, 'hours.fri: [8,"17:00"]: times are "HH:MM", from 00:00 to 24:00'],
    [{ timeZone: 'UTC', hours: { fri: [['13:00', '17:00'], ['08:00', '13:30']] } }, 'hours.fri: intervals overlap'],
    [{ timeZone: 'UTC', hours: {}, closed: '2026-12-25' }, 'closed must be a list of dates "YYYY-MM-DD"'],
    [{ timeZone: 'UTC', hours: {}, closed: ['2026-12-25', 20261226] }, 'closed must be a list of dates "YYYY-MM-DD"'],
    [{ timeZone: 'UTC', hours: {}, closed: ['x2026-12-25'] }, 'closed must be a list of dates "YYYY-MM-DD"'],
    [{ timeZone: 'UTC', hours: {}, closed: ['2026-12-25x'] }, 'closed must be a list of dates "YYYY-MM-DD"'],
  ])('the exact message for %j', (value, message) => {
    expect(parseBusinessHours(value)).toEqual({ error: message });
  });

  test('intervals are kept in order of start, touching ones allowed; closed dates kept, none when absent', () => {
    const parsed = hours({ timeZone: 'UTC', hours: { mon: [['13:00', '17:00'], ['12:00', '13:00'], ['08:00', '12:00']] }, closed: ['2026-12-25'] });
    expect(parsed.week[1]).toEqual([
      [480, 720],
      [720, 780],
      [780, 1020],
    ]);
    expect([...parsed.closed]).toEqual(['2026-12-25']);
    expect([...hours({ timeZone: 'UTC', hours: {} }).closed]).toEqual([]);
  });

  test('a closed date with a one-digit month and day', () => {
    const open = hours({ timeZone: 'UTC', hours: { mon: [['09:00', '10:00']] } });
    const closed = hours({ timeZone: 'UTC', hours: { mon: [['09:00', '10:00']] }, closed: ['2026-01-05'] });
    // Monday 2026-01-05.
    expect(between(open, '2026-01-05T00:00:00Z', '2026-01-06T00:00:00Z')).toBe(1);
    expect(between(closed, '2026-01-05T00:00:00Z', '2026-01-06T00:00:00Z')).toBe(0);
  });

  test('the cap stops counting at the first day that reaches it', () => {
    // Nine open hours a day: a cap of 9 is reached on Monday, so Tuesday is not counted.
    expect(businessClock(hours({ timeZone: 'America/New_York', hours: weekdays([['08:00', '17:00']]) })).hoursBetween(Date.parse('2026-11-23T05:00:00Z'), Date.parse('2026-11-28T05:00:00Z'), 9)).toBe(9);
  });

  test('a day left out is closed', () => {
    expect(hours({ timeZone: 'UTC', hours: { mon: [['09:00', '10:00']] } }).week.map((d) => d.length)).toEqual([0, 1, 0, 0, 0, 0, 0]);
  });
});

test('the example files users copy are valid', async () => {
  const { readFileSync } = await import('node:fs');
  const { parseResponseRules } = await import('../../src/lib/response-rules');
  expect(parseBusinessHours(JSON.parse(readFileSync('examples/business-hours.json', 'utf8')))).toHaveProperty('hours');
  expect(parseResponseRules(JSON.parse(readFileSync('examples/stale-rules.json', 'utf8')), { escalateAfterHours: 24 })).toHaveProperty('rules');
});
