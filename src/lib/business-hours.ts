// A clinic's opening hours, and elapsed time counted only while it is open. Pure: no I/O.
//
// `BUSINESS_HOURS` (a Bot secret, and `sla-export --business-hours FILE`):
//   { "timeZone": "America/New_York",
//     "hours": { "mon": [["08:00","12:00"],["13:00","17:00"]], ..., "sun": [] },
//     "closed": ["2026-12-25"] }
// A day may have several intervals; an interval ends at or before 24:00 and may not cross midnight
// (write 22:00-24:00 on one day and 00:00-02:00 on the next). A day left out is closed. Each interval
// is read in the clinic's zone on each date, so daylight-saving changes give 23- or 25-hour days
// their real length.
import { addDays, compareDates, isTimeZone, localDate, zonedInstant } from './zoned-time';
import type { LocalDate } from './zoned-time';

const HOUR_MS = 3_600_000;
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** Opening hours, parsed. */
export interface BusinessHours {
  timeZone: string;
  /** Per day of the week (0 = Sunday): [start, end) in minutes after local midnight. */
  week: [number, number][][];
  /** Closed dates, `YYYY-MM-DD`. */
  closed: Set<string>;
}

/** How elapsed time is counted: every hour (`wall`), or only open hours (`business`). */
export interface Clock {
  kind: 'wall' | 'business';
  /**
   * Hours counted from one instant to another (0 when `to` is not after `from`).
   * @param from - Start, epoch ms.
   * @param to - End, epoch ms.
   * @param cap - Stop counting once this many hours are reached (the answer is then at least `cap`).
   */
  hoursBetween(from: number, to: number, cap?: number): number;
}

/** Every hour counts. */
export const WALL_CLOCK: Clock = { kind: 'wall', hoursBetween: (from, to) => Math.max(0, to - from) / HOUR_MS };

/**
 * Parses and checks opening hours.
 * @param value - The parsed JSON.
 * @returns The hours, or what is wrong with them (naming the day, interval or key).
 */
export function parseBusinessHours(value: unknown): { hours: BusinessHours } | { error: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { error: 'must be a JSON object with timeZone, hours and optionally closed' };
  }
  const { timeZone, hours, closed, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) {
    return { error: `unknown key(s): ${unknown.join(', ')}` };
  }
  if (typeof timeZone !== 'string' || !isTimeZone(timeZone)) {
    return { error: `timeZone ${JSON.stringify(timeZone)} is not an IANA time zone (e.g. "America/New_York")` };
  }
  if (!hours || typeof hours !== 'object' || Array.isArray(hours)) {
    return { error: 'hours must be an object with keys mon, tue, wed, thu, fri, sat, sun' };
  }
  const week: [number, number][][] = DAYS.map(() => []);
  for (const [day, intervals] of Object.entries(hours)) {
    const index = DAYS.indexOf(day as (typeof DAYS)[number]);
    if (index < 0) {
      return { error: `hours: unknown day "${day}" (use mon, tue, wed, thu, fri, sat, sun)` };
    }
    if (!Array.isArray(intervals)) {
      return { error: `hours.${day} must be a list of ["HH:MM","HH:MM"] intervals` };
    }
    for (const interval of intervals) {
      const parsed = parseInterval(interval);
      if ('error' in parsed) {
        return { error: `hours.${day}: ${parsed.error}` };
      }
      week[index].push(parsed.interval);
    }
    week[index].sort((a, b) => a[0] - b[0]);
    const overlap = week[index].find((iv, i) => i > 0 && iv[0] < week[index][i - 1][1]);
    if (overlap) {
      return { error: `hours.${day}: intervals overlap` };
    }
  }
  if (closed !== undefined && (!Array.isArray(closed) || closed.some((d) => !isIsoDate(d)))) {
    return { error: 'closed must be a list of dates "YYYY-MM-DD"' };
  }
  return { hours: { timeZone, week, closed: new Set((closed as string[] | undefined) ?? []) } };
}

function parseInterval(interval: unknown): { interval: [number, number] } | { error: string } {
  if (!Array.isArray(interval) || interval.length !== 2) {
    return { error: `${JSON.stringify(interval)} is not an ["HH:MM","HH:MM"] interval` };
  }
  const [start, end] = interval.map(minutesOfDay);
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return { error: `${JSON.stringify(interval)}: times are "HH:MM", from 00:00 to 24:00` };
  }
  if (end <= start) {
    return {
      error:
        `${interval[0]}-${interval[1]} ends before it starts: an interval may not cross midnight; ` +
        `write ${interval[0]}-24:00 on this day and 00:00-${interval[1]} on the next`,
    };
  }
  return { interval: [start, end] };
}

function minutesOfDay(time: unknown): number {
  const match = typeof time === 'string' ? /^(\d\d):(\d\d)$/.exec(time) : null;
  if (!match) {
    return NaN;
  }
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  return Number(match[2]) < 60 && minutes <= 1440 ? minutes : NaN;
}

function isIsoDate(value: unknown): boolean {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\d$/.test(value)) {
    return false;
  }
  return new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);
}

function dateKey(date: LocalDate): string {
  return `${date.year}-${String(date.month).padStart(2, '0')}-${String(date.day).padStart(2, '0')}`;
}

/**
 * A clock that counts only open hours.
 * @param hours - Opening hours.
 * @returns The clock. It remembers each date's open intervals, so a run over thousands of threads
 *   converts each date once.
 */
export function businessClock(hours: BusinessHours): Clock {
  const byDate = new Map<string, [number, number][]>();
  const openOn = (date: LocalDate): [number, number][] => {
    const key = dateKey(date);
    let intervals = byDate.get(key);
    if (!intervals) {
      intervals = hours.closed.has(key)
        ? []
        : hours.week[date.dayOfWeek].map(([start, end]) => [zonedInstant(date, start, hours.timeZone), zonedInstant(date, end, hours.timeZone)]);
      byDate.set(key, intervals);
    }
    return intervals;
  };
  return {
    kind: 'business',
    hoursBetween(from, to, cap = Infinity) {
      let total = 0;
      const last = localDate(to, hours.timeZone);
      for (let date = localDate(from, hours.timeZone); compareDates(date, last) <= 0 && total < cap * HOUR_MS; date = addDays(date, 1)) {
        for (const [start, end] of openOn(date)) {
          total += Math.max(0, Math.min(end, to) - Math.max(start, from));
        }
      }
      return total / HOUR_MS;
    },
  };
}

/**
 * Checks an hour of the day (`STALE_FULL_RECONCILE_HOUR`): a whole number from 0 to 23.
 * @param value - The secret's value.
 * @returns The hour, or what is wrong.
 */
export function parseHourOfDay(value: string): { hour: number } | { error: string } {
  return /^\d{1,2}$/.test(value.trim()) && Number(value) < 24 ? { hour: Number(value) } : { error: 'must be an hour from 0 to 23' };
}
