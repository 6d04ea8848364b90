// Wall-clock time in IANA time zones, as Medplum's `$find` reads it.
//
// Offsets come from @date-fns/tz (5 kB, zone data from the runtime's Intl). Turning a local wall-clock
// time into an instant follows Temporal's `compatible` rule, which the server's `$find` uses
// (`withPlainTime`): a time that does not exist (spring forward) moves forward by the gap; a time
// that exists twice (fall back) is the earlier instant. @date-fns/tz's TZDate picks the later
// instant in some zones, so the rule is applied here explicitly.
import { tzOffset } from '@date-fns/tz';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** A calendar date (month 1-12), with its day of the week (0 = Sunday). */
export interface LocalDate {
  year: number;
  month: number;
  day: number;
  dayOfWeek: number;
}

/**
 * Whether a code is an IANA time zone this runtime knows (`"Eastern"` is not).
 * @param timeZone - The code.
 * @returns True for a usable zone.
 */
export function isTimeZone(timeZone: string | undefined): timeZone is string {
  if (!timeZone) {
    return false;
  }
  let known = KNOWN_ZONES.get(timeZone);
  if (known === undefined) {
    try {
      // Asked of Intl itself: tzOffset falls back to parsing "±HH:MM" out of any string ("Eastern-05").
      new Intl.DateTimeFormat('en-US', { timeZone });
      known = true;
    } catch {
      known = false;
    }
    KNOWN_ZONES.set(timeZone, known);
  }
  return known;
}

/** Zone codes already asked of Intl (building a DateTimeFormat is the costly part of every availability check). */
const KNOWN_ZONES = new Map<string, boolean>();

/**
 * The offset of a zone from UTC at an instant.
 * @param timeZone - IANA zone.
 * @param instant - Epoch milliseconds.
 * @returns Local time minus UTC, in milliseconds.
 */
export function offsetMs(timeZone: string, instant: number): number {
  return tzOffset(timeZone, new Date(instant)) * MINUTE_MS;
}

/**
 * The local calendar date of an instant.
 * @param instant - Epoch milliseconds.
 * @param timeZone - IANA zone.
 * @returns The local date.
 */
export function localDate(instant: number, timeZone: string): LocalDate {
  const local = new Date(instant + offsetMs(timeZone, instant));
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate(), dayOfWeek: local.getUTCDay() };
}

/**
 * The date a number of days after another (negative: before).
 * @param date - The date.
 * @param days - Days to add.
 * @returns The new date.
 */
export function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), dayOfWeek: d.getUTCDay() };
}

/**
 * Orders two dates.
 * @param a - A date.
 * @param b - Another.
 * @returns Negative when a is before b, 0 when equal, positive after.
 */
export function compareDates(a: LocalDate, b: LocalDate): number {
  return Date.UTC(a.year, a.month - 1, a.day) - Date.UTC(b.year, b.month - 1, b.day);
}

/**
 * The instant of a local wall-clock time, by Temporal's `compatible` rule (see the file comment).
 * @param date - The local date.
 * @param minuteOfDay - Minutes after local midnight (may exceed a day: 24:00 is the next midnight).
 * @param timeZone - IANA zone.
 * @returns Epoch milliseconds.
 */
export function zonedInstant(date: LocalDate, minuteOfDay: number, timeZone: string): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day) + minuteOfDay * MINUTE_MS;
  // The offsets in force a day either side of the wall time cover any single transition.
  const before = offsetMs(timeZone, wall - DAY_MS);
  const after = offsetMs(timeZone, wall + DAY_MS);
  const valid = [before, after].map((o) => wall - o).filter((t) => offsetMs(timeZone, t) === wall - t);
  if (valid.length) {
    return Math.min(...valid); // a repeated time: the earlier instant
  }
  return wall - before; // a skipped time: read with the offset before the gap, i.e. moved forward
}
