// zoned-time.ts against Temporal (the server's $find library) as the oracle.
import { Temporal } from 'temporal-polyfill';
import { describe, expect, test } from 'vitest';
import { addDays, compareDates, isTimeZone, localDate, zonedInstant } from '../../src/lib/zoned-time';

const ZONES = ['America/New_York', 'America/Anguilla', 'Europe/Berlin', 'Asia/Tokyo', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'UTC'];

describe('zonedInstant follows Temporal compatible disambiguation', () => {
  // Dates around every 2026 transition of these zones, and ordinary days.
  const dates = ['2026-03-08', '2026-03-29', '2026-04-05', '2026-09-27', '2026-10-04', '2026-10-25', '2026-11-01', '2026-06-15', '2026-12-31'];
  const minutes = [0, 30, 60, 90, 120, 135, 150, 180, 600, 1439, 1440];
  test.each(ZONES)('%s', (timeZone) => {
    for (const iso of dates) {
      const [year, month, day] = iso.split('-').map(Number);
      const date = { year, month, day, dayOfWeek: new Date(`${iso}T00:00:00Z`).getUTCDay() };
      for (const minute of minutes) {
        const midnight = Temporal.ZonedDateTime.from({ year, month, day, timeZone });
        const expected =
          minute === 1440
            ? Temporal.ZonedDateTime.from({ ...addDays(date, 1), timeZone }).epochMilliseconds
            : midnight.withPlainTime({ hour: Math.floor(minute / 60), minute: minute % 60 }).epochMilliseconds;
        expect(zonedInstant(date, minute, timeZone), `${timeZone} ${iso} +${minute}min`).toBe(expected);
      }
    }
  });

  test('a skipped hour moves forward; a repeated hour is the earlier instant', () => {
    const springForward = { year: 2026, month: 3, day: 8, dayOfWeek: 0 };
    expect(new Date(zonedInstant(springForward, 150, 'America/New_York')).toISOString()).toBe('2026-03-08T07:30:00.000Z'); // 02:30 -> 03:30 EDT
    const fallBack = { year: 2026, month: 10, day: 25, dayOfWeek: 0 };
    expect(new Date(zonedInstant(fallBack, 150, 'Europe/Berlin')).toISOString()).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST, not CET
  });
});

describe('localDate', () => {
  test('the local calendar date and weekday of an instant', () => {
    expect(localDate(Date.parse('2026-11-28T05:40:00Z'), 'America/Anguilla')).toEqual({ year: 2026, month: 11, day: 28, dayOfWeek: 6 });
    expect(localDate(Date.parse('2026-11-28T03:40:00Z'), 'America/Anguilla')).toEqual({ year: 2026, month: 11, day: 27, dayOfWeek: 5 });
    expect(localDate(Date.parse('2026-11-27T16:00:00Z'), 'Asia/Tokyo')).toEqual({ year: 2026, month: 11, day: 28, dayOfWeek: 6 });
  });
});

describe('isTimeZone', () => {
  test.each([
    ['America/New_York', true],
    ['UTC', true],
    ['Eastern', false],
    ['Eastern-05', false],
    ['', false],
    [undefined, false],
  ])('%s: %s', (code, valid) => {
    expect(isTimeZone(code)).toBe(valid);
  });
});

test('compareDates orders local dates across months and years', () => {
  const date = (year: number, month: number, day: number) => ({ year, month, day, dayOfWeek: 0 });
  expect(compareDates(date(2026, 3, 1), date(2026, 2, 28))).toBeGreaterThan(0);
  expect(compareDates(date(2026, 2, 28), date(2026, 3, 1))).toBeLessThan(0);
  expect(compareDates(date(2027, 1, 1), date(2026, 12, 31))).toBeGreaterThan(0);
  expect(compareDates(date(2026, 5, 5), date(2026, 5, 5))).toBe(0);
});
