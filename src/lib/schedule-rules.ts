// A Schedule's working hours, read from Medplum's scheduling-parameters extension the way the
// server's `$find` reads them (rule sets, service types, the actor's zone), and evaluated here at
// any instant: overnight shifts included, without `$find`'s UTC-day quirk, its 20-slot page, or its
// removal of booked time (an appointment is being at work). Pure: no I/O.
import { getExtension, getExtensionValue } from '@medplum/core';
import type { Coding, Duration, Extension, Schedule } from '@medplum/fhirtypes';
import { addDays, compareDates, localDate, zonedInstant } from './zoned-time';
import type { LocalDate } from './zoned-time';

export const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
export const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';

const MINUTE_MS = 60_000;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const UNIT_MINUTES: Record<string, number> = { min: 1, h: 60, d: 1440, wk: 10080 };

/** A half-open time interval [start, end) in epoch milliseconds. */
export interface Interval {
  start: number;
  end: number;
}

/** One scheduling-parameters extension: a set of availability rules and its slot grid. */
export interface RuleSet {
  availability: { days: string[]; minutesOfDay: number[]; durationMinutes: number }[];
  durationMinutes: number;
  bufferBeforeMinutes: number;
  bufferAfterMinutes: number;
  /** `alignmentInterval`; 0 or absent means on the hour (60). */
  alignmentMinutes: number;
  /** `system|code` of each serviceType; none means the set applies to any service ("wildcard"). */
  serviceTypes: string[];
}

/**
 * Reads every scheduling-parameters extension of a Schedule.
 * @param schedule - The Schedule.
 * @returns The rule sets, or why they cannot be read (as `$find` would refuse them).
 */
export function parseRuleSets(schedule: Schedule): { sets: RuleSet[] } | { error: string } {
  const sets: RuleSet[] = [];
  for (const ext of (schedule.extension ?? []).filter((e) => e.url === SCHEDULING_PARAMETERS_URL)) {
    const sub = (url: string): Extension[] => (ext.extension ?? []).filter((e) => e.url === url);
    const duration = minutes(sub('duration')[0]?.valueDuration);
    if (!duration) {
      return { error: 'a scheduling-parameters set has no duration' };
    }
    const availability = sub('availability').map((a) => {
      const repeat = a.valueTiming?.repeat;
      return {
        days: (repeat?.dayOfWeek ?? []) as string[],
        minutesOfDay: (repeat?.timeOfDay ?? []).map(minuteOfDay),
        durationMinutes: minutes({ value: repeat?.duration, unit: repeat?.durationUnit }) ?? NaN,
      };
    });
    if (availability.some((a) => !(a.durationMinutes > 0) || a.minutesOfDay.some(Number.isNaN))) {
      return { error: 'a scheduling-parameters availability has no valid time of day or duration' };
    }
    sets.push({
      availability,
      durationMinutes: duration,
      bufferBeforeMinutes: minutes(sub('bufferBefore')[0]?.valueDuration) ?? 0,
      bufferAfterMinutes: minutes(sub('bufferAfter')[0]?.valueDuration) ?? 0,
      alignmentMinutes: minutes(sub('alignmentInterval')[0]?.valueDuration) || 60,
      serviceTypes: sub('serviceType').map((e) => codingKey(e.valueCoding)),
    });
  }
  return { sets };
}

function minutes(duration: Pick<Duration, 'value' | 'unit'> | undefined): number | undefined {
  if (duration?.value === undefined) {
    return undefined;
  }
  const factor = UNIT_MINUTES[duration.unit ?? ''];
  return factor === undefined ? undefined : duration.value * factor;
}

function minuteOfDay(timeOfDay: string): number {
  // FHIR `time`: hh:mm:ss with optional fractional seconds (hh:mm accepted too).
  const match = /^(\d\d):(\d\d)(?::(\d\d(?:\.\d+)?))?$/.exec(timeOfDay);
  return match ? Number(match[1]) * 60 + Number(match[2]) + Number(match[3] ?? 0) / 60 : NaN;
}

function codingKey(coding: Coding | undefined): string {
  return `${coding?.system ?? ''}|${coding?.code ?? ''}`;
}

/**
 * The service types to send to `$find`. Configured ones when given. Otherwise none, which makes
 * the server use the sets tied to no service type; but when every set is tied to a service type
 * (the server would then find nothing), all of the Schedule's types: "available for any of them".
 * @param sets - The Schedule's rule sets.
 * @param configured - `system|code` values from the `OOO_SERVICE_TYPE` secret.
 * @returns The values for `service-type`, possibly empty.
 */
export function serviceTypesToRequest(sets: RuleSet[], configured: string[]): string[] {
  if (configured.length || sets.length === 0 || sets.some((s) => s.serviceTypes.length === 0)) {
    return configured;
  }
  return [...new Set(sets.flatMap((s) => s.serviceTypes))];
}

/**
 * The sets `$find` uses for a request, by the server's rule: those tied to a requested service
 * type, else (none requested, or none matching) those tied to no service type.
 * @param sets - The Schedule's rule sets.
 * @param requested - The `service-type` values sent.
 * @returns The sets in use.
 */
export function selectRuleSets(sets: RuleSet[], requested: string[]): RuleSet[] {
  const matching = sets.filter((s) => s.serviceTypes.some((t) => requested.includes(t)));
  return matching.length ? matching : sets.filter((s) => s.serviceTypes.length === 0);
}

/** One occurrence of an availability rule: the local day it belongs to and its interval. */
interface Occurrence extends Interval {
  day: LocalDate;
}

/**
 * Every occurrence of the sets' availability rules overlapping an interval, including those that
 * began on earlier local days (an overnight shift, a multi-day block).
 * @param sets - Rule sets in use.
 * @param timeZone - The actor's IANA zone.
 * @param range - The interval.
 * @returns The occurrences, in no particular order.
 */
function occurrences(sets: RuleSet[], timeZone: string, range: Interval): Occurrence[] {
  const longest = Math.max(0, ...sets.flatMap((s) => s.availability.map((a) => a.durationMinutes)));
  const first = addDays(localDate(range.start, timeZone), -Math.ceil(longest / 1440) - 1);
  const last = localDate(range.end, timeZone);
  const found: Occurrence[] = [];
  for (let day = first; compareDates(day, last) <= 0; day = addDays(day, 1)) {
    for (const rule of sets.flatMap((s) => s.availability)) {
      if (!rule.days.includes(DAY_NAMES[day.dayOfWeek])) {
        continue;
      }
      for (const minute of rule.minutesOfDay) {
        const start = zonedInstant(day, minute, timeZone);
        const end = start + rule.durationMinutes * MINUTE_MS;
        if (start < range.end && end > range.start) {
          found.push({ day, start, end });
        }
      }
    }
  }
  return found;
}

/**
 * Whether the sets' working hours cover an instant, whichever local day the shift began on.
 * @param sets - Rule sets in use.
 * @param timeZone - The actor's IANA zone.
 * @param instant - Epoch milliseconds.
 * @returns True when working.
 */
export function isWorkingAt(sets: RuleSet[], timeZone: string, instant: number): boolean {
  return occurrences(sets, timeZone, { start: instant, end: instant + 1 }).length > 0;
}

/**
 * The IANA time zone a Schedule actor declares.
 * @param actor - Practitioner, PractitionerRole...
 * @param actor.extension - Its extensions.
 * @returns The code, or undefined when the actor has none.
 */
export function declaredTimeZone(actor: { extension?: Extension[] } | undefined): string | undefined {
  return actor && getExtension(actor, TIMEZONE_URL) ? (getExtensionValue(actor, TIMEZONE_URL) as string | undefined) : undefined;
}
