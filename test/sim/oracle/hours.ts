// The oracle's own clock arithmetic: local wall time in an IANA zone, working hours, absences and
// business hours. Written from the definitions (README "When is a provider available?", the
// BUSINESS_HOURS format), with Intl only: nothing here comes from src/, so a mistake in the bots'
// time code cannot hide in the oracle too.
//
// - A shift starts at a local time on a local day and lasts its duration in real time (so an
//   overnight shift across a daylight-saving change is ten real hours, ending an hour earlier or
//   later on the wall clock), as FHIR's Timing.repeat.duration reads.
// - Available = inside a shift and no absence (busy-unavailable Slot) covering the instant.
// - Business hours: open intervals per weekday in the clinic's zone, closed dates; hours elapsed
//   count only open time.

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
export const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type DayName = (typeof DAY_NAMES)[number];

/** A local calendar day. */
export interface LocalDay {
  year: number;
  month: number;
  day: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, number>();

/**
 * The zone's offset from UTC at an instant, in ms (local = UTC + offset).
 * @param zone - IANA zone.
 * @param instant - Epoch ms.
 * @returns The offset.
 */
export function zoneOffset(zone: string, instant: number): number {
  // US and European transitions happen on the hour: one lookup per zone and hour.
  const key = `${zone}|${Math.floor(instant / HOUR_MS)}`;
  const cached = offsetCache.get(key);
  if (cached !== undefined) {
    return cached;
  }
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, format);
  }
  const at = Math.floor(instant / HOUR_MS) * HOUR_MS;
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  const offset = local - at;
  offsetCache.set(key, offset);
  return offset;
}

/**
 * The local day an instant falls on.
 * @param zone - IANA zone.
 * @param instant - Epoch ms.
 * @returns The day.
 */
export function localDay(zone: string, instant: number): LocalDay {
  const d = new Date(instant + zoneOffset(zone, instant));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}

/**
 * The day `n` days after another.
 * @param day - A day.
 * @param n - Days to add (may be negative).
 * @returns The day.
 */
export function addDays(day: LocalDay, n: number): LocalDay {
  const d = new Date(Date.UTC(day.year, day.month - 1, day.day + n));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), weekday: d.getUTCDay() };
}

/** `YYYY-MM-DD`. */
export function dayKey(day: LocalDay): string {
  return `${day.year}-${String(day.month).padStart(2, '0')}-${String(day.day).padStart(2, '0')}`;
}

/**
 * The instant of a local wall time (minutes after local midnight, 1440 = the next midnight).
 * Times inside a daylight-saving gap or overlap are not used by the simulation.
 * @param zone - IANA zone.
 * @param day - The local day.
 * @param minutes - Minutes after midnight.
 * @returns Epoch ms.
 */
export function localInstant(zone: string, day: LocalDay, minutes: number): number {
  const wall = Date.UTC(day.year, day.month - 1, day.day) + minutes * MINUTE_MS;
  let instant = wall - zoneOffset(zone, wall);
  instant = wall - zoneOffset(zone, instant);
  return instant;
}

/** One weekly working-hours rule: these days, from a local time, for a duration. */
export interface ShiftRule {
  days: DayName[];
  /** Minutes after local midnight. */
  start: number;
  /** Real-time length in minutes. */
  minutes: number;
}

/** An absence block: a busy-unavailable Slot, and when it was recorded. */
export interface Absence {
  slot: string;
  start: number;
  end: number;
  /** When the Slot was stored: the bots cannot know of it before. */
  recordedAt: number;
}

/**
 * Whether working hours cover an instant, whichever local day the shift began on.
 * @param zone - The provider's zone.
 * @param rules - Their rules.
 * @param instant - Epoch ms.
 * @returns True when on shift.
 */
export function onShift(zone: string, rules: ShiftRule[], instant: number): boolean {
  const today = localDay(zone, instant);
  for (let back = 0; back <= 2; back++) {
    const day = addDays(today, -back);
    for (const rule of rules) {
      if (!rule.days.includes(DAY_NAMES[day.weekday])) {
        continue;
      }
      const start = localInstant(zone, day, rule.start);
      if (start <= instant && instant < start + rule.minutes * MINUTE_MS) {
        return true;
      }
    }
  }
  return false;
}

/**
 * The absence covering an instant, among those recorded by a given time.
 * @param absences - The provider's absences.
 * @param instant - Epoch ms.
 * @param knownAt - Only absences recorded at or before this instant count.
 * @returns The absence, or undefined.
 */
export function absenceAt(absences: Absence[], instant: number, knownAt = Infinity): Absence | undefined {
  return absences.find((a) => a.recordedAt <= knownAt && a.start <= instant && instant < a.end);
}

/**
 * The next instant at or after `from` when a provider's shift starts or is under way.
 * @param zone - Zone.
 * @param rules - Rules.
 * @param from - Epoch ms.
 * @returns Epoch ms (within 8 days), or undefined.
 */
export function nextOnShift(zone: string, rules: ShiftRule[], from: number): number | undefined {
  if (onShift(zone, rules, from)) {
    return from;
  }
  let best: number | undefined;
  const today = localDay(zone, from);
  for (let n = 0; n <= 8; n++) {
    const day = addDays(today, n);
    for (const rule of rules) {
      if (rule.days.includes(DAY_NAMES[day.weekday])) {
        const start = localInstant(zone, day, rule.start);
        if (start >= from && (best === undefined || start < best)) {
          best = start;
        }
      }
    }
  }
  return best;
}

/** Opening hours: per weekday, open intervals in minutes; closed dates. */
export interface OpeningHours {
  zone: string;
  /** Index 0 = Sunday. */
  week: [number, number][][];
  closed: string[];
}

/**
 * Open milliseconds between two instants.
 * @param hours - Opening hours.
 * @param from - Epoch ms.
 * @param to - Epoch ms.
 * @returns Milliseconds the clinic was open.
 */
export function openMsBetween(hours: OpeningHours, from: number, to: number): number {
  if (to <= from) {
    return 0;
  }
  let total = 0;
  const last = dayKey(localDay(hours.zone, to));
  for (let day = localDay(hours.zone, from); ; day = addDays(day, 1)) {
    if (!hours.closed.includes(dayKey(day))) {
      for (const [s, e] of hours.week[day.weekday]) {
        total += Math.max(0, Math.min(localInstant(hours.zone, day, e), to) - Math.max(localInstant(hours.zone, day, s), from));
      }
    }
    if (dayKey(day) >= last) {
      return total;
    }
  }
}

/**
 * The instant when `hours` of clock time have passed since `from`: wall hours, or open hours.
 * @param hours - Opening hours, or undefined for the wall clock.
 * @param from - Epoch ms.
 * @param elapsedHours - Hours to count.
 * @returns Epoch ms.
 */
export function crossing(hours: OpeningHours | undefined, from: number, elapsedHours: number): number {
  const need = elapsedHours * HOUR_MS;
  if (!hours) {
    return from + need;
  }
  let left = need;
  for (let day = localDay(hours.zone, from), n = 0; n < 400; day = addDays(day, 1), n++) {
    if (hours.closed.includes(dayKey(day))) {
      continue;
    }
    for (const [s, e] of hours.week[day.weekday]) {
      const start = Math.max(localInstant(hours.zone, day, s), from);
      const end = localInstant(hours.zone, day, e);
      if (end <= start) {
        continue;
      }
      if (end - start >= left) {
        return start + left;
      }
      left -= end - start;
    }
  }
  return Infinity;
}

/**
 * Clock hours between two instants.
 * @param hours - Opening hours, or undefined for the wall clock.
 * @param from - Epoch ms.
 * @param to - Epoch ms.
 * @returns Hours.
 */
export function clockHours(hours: OpeningHours | undefined, from: number, to: number): number {
  return (hours ? openMsBetween(hours, from, to) : Math.max(0, to - from)) / HOUR_MS;
}
