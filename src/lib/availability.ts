// The one definition of "available", used by every component that routes work. Pure: no I/O.
//
// A provider is available at instant t when t lies inside the working hours of one of their active
// Schedules (its scheduling-parameters availability, in the provider's time zone, overnight shifts
// included) and no `busy-unavailable` Slot of that Schedule covers t. Appointments (`busy` Slots)
// never make anyone unavailable: booked now, between two bookings or to the end of the shift is
// still being at work.
//
// An active Schedule without working hours (no scheduling-parameters availability) means the
// provider is not working: Medplum's guidance reroutes when "no availability is defined for the
// current day". A provider with no active Schedule at all is unknown, and keeps their Tasks. A
// provider without a time zone cannot have their hours read: only an absence block makes them
// unavailable ("available unless blocked"). Such owners are listed by `npm run status`.
import type { RuleSet } from './schedule-rules';
import { isWorkingAt, selectRuleSets, serviceTypesToRequest } from './schedule-rules';
import { isTimeZone } from './zoned-time';

/** Why an owner is (un)available, as a code: safe to log, turned into words for notes. */
export type AvailabilityReason =
  /** Inside working hours, no absence. */
  | 'on-shift'
  /** Outside working hours (or no hours that day). */
  | 'off-shift'
  /** A busy-unavailable Slot (vacation, sick leave) covers the instant. */
  | 'absent'
  /** The Schedule has no working-hours rules: not working. */
  | 'no-working-hours'
  /** The provider has no time zone, so the rules cannot be read: available unless blocked. */
  | 'no-time-zone'
  /** The provider's time zone is not an IANA zone: cannot tell. */
  | 'invalid-time-zone'
  /** The Schedule's rules cannot be read: cannot tell. */
  | 'unreadable-rules'
  /** No active Schedule: cannot tell. */
  | 'no-schedule'
  /** The owner's facts were not read (quota or deadline): cannot tell. */
  | 'not-checked';

/** Whether an owner can be reached at an instant, and why we think so. */
export interface Availability {
  state: 'available' | 'unavailable' | 'unknown';
  reason: AvailabilityReason;
  /** The busy-unavailable Slot when the reason is `absent`. */
  absence?: string;
}

/** An absence block: a busy-unavailable Slot's interval. */
export interface Block {
  slot: string;
  start: number;
  end: number;
}

/** One Schedule, as read. */
export interface ScheduleFacts {
  schedule: string;
  /** Its working-hours rule sets, or why they cannot be read. */
  rules: { sets: RuleSet[] } | { error: string };
  /** Its busy-unavailable Slots over the instants being decided. */
  blocks: Block[];
}

/** Everything needed to decide an owner's availability at instants of a read window. */
export interface OwnerFacts {
  owner: string;
  /** The actor's time-zone code, as declared (undefined: none). */
  timeZone?: string;
  /** Display name for notes (never logged). */
  name?: string;
  /** The owner's active Schedules. */
  schedules: ScheduleFacts[];
}

/**
 * Whether an owner is available at an instant.
 * @param facts - The owner's Schedules, blocks and time zone; undefined when not read.
 * @param instant - Epoch milliseconds.
 * @param serviceTypes - `system|code` values (the OOO_SERVICE_TYPE secret): which rule sets count.
 * @returns The availability.
 */
export function availabilityAt(facts: OwnerFacts | undefined, instant: number, serviceTypes: string[] = []): Availability {
  if (!facts) {
    return { state: 'unknown', reason: 'not-checked' };
  }
  if (!facts.schedules.length) {
    return { state: 'unknown', reason: 'no-schedule' };
  }
  const results = facts.schedules.map((s) => scheduleAt(s, facts.timeZone, instant, serviceTypes));
  const available = results.find((r) => r.state === 'available');
  if (available) {
    return available;
  }
  // An unreadable Schedule next to an empty one does not prove absence.
  const unknown = results.find((r) => r.state === 'unknown');
  if (unknown) {
    return unknown;
  }
  return results.find((r) => r.reason === 'absent') ?? results[0];
}

function scheduleAt(schedule: ScheduleFacts, timeZone: string | undefined, instant: number, serviceTypes: string[]): Availability {
  const block = schedule.blocks.find((b) => b.start <= instant && instant < b.end);
  if (block) {
    return { state: 'unavailable', reason: 'absent', absence: block.slot };
  }
  if ('error' in schedule.rules) {
    return { state: 'unknown', reason: 'unreadable-rules' };
  }
  const all = schedule.rules.sets;
  if (!all.length) {
    // No hours at all: not working, whatever the zone says.
    return { state: 'unavailable', reason: 'no-working-hours' };
  }
  if (timeZone !== undefined && !isTimeZone(timeZone)) {
    return { state: 'unknown', reason: 'invalid-time-zone' };
  }
  if (timeZone === undefined) {
    return { state: 'available', reason: 'no-time-zone' };
  }
  const sets = selectRuleSets(all, serviceTypesToRequest(all, serviceTypes));
  return isWorkingAt(sets, timeZone, instant) ? { state: 'available', reason: 'on-shift' } : { state: 'unavailable', reason: 'off-shift' };
}

/**
 * Whether an owner's availability rests on a fallback rather than on working hours: no rules, no
 * time zone, an invalid one, unreadable rules, no Schedule. What `npm run status` lists.
 * @param availability - An availability.
 * @returns True when the hours could not be judged.
 */
export function isJudgedWithoutHours(availability: Availability): boolean {
  return !['on-shift', 'off-shift', 'absent', 'not-checked'].includes(availability.reason);
}

/**
 * Why an owner's hours cannot be fully judged, whatever the hour: every fallback any of their
 * Schedules rests on (no Schedule, a Schedule without hours, unreadable rules, no or an invalid time
 * zone where hours exist). What `npm run status -- --data` lists; unlike `availabilityAt`, the answer
 * does not depend on the moment it is asked.
 * @param facts - The owner's facts (undefined: not read).
 * @param serviceTypes - `system|code` values (OOO_SERVICE_TYPE): a Schedule whose hours are all for
 *   other service types has no hours that count.
 * @returns The reasons, each once, in a fixed order; empty when every Schedule can be judged.
 */
export function fallbackReasons(facts: OwnerFacts | undefined, serviceTypes: string[] = []): AvailabilityReason[] {
  if (!facts) {
    return [];
  }
  if (!facts.schedules.length) {
    return ['no-schedule'];
  }
  const found = new Set<AvailabilityReason>();
  for (const schedule of facts.schedules) {
    if ('error' in schedule.rules) {
      found.add('unreadable-rules');
    } else if (!selectRuleSets(schedule.rules.sets, serviceTypesToRequest(schedule.rules.sets, serviceTypes)).length) {
      found.add('no-working-hours');
    } else if (facts.timeZone === undefined) {
      found.add('no-time-zone');
    } else if (!isTimeZone(facts.timeZone)) {
      found.add('invalid-time-zone');
    }
  }
  const order: AvailabilityReason[] = ['no-schedule', 'no-working-hours', 'no-time-zone', 'invalid-time-zone', 'unreadable-rules'];
  return order.filter((r) => found.has(r));
}

/**
 * What the bots do for an owner whose availability rests on a fallback, in words for an admin.
 * @param availability - An availability (see isJudgedWithoutHours).
 * @returns E.g. "treated as not working: their Tasks go to a cover or the pool when a patient writes".
 */
export function fallbackEffect(availability: Availability): string {
  switch (availability.state) {
    case 'available':
      return 'treated as available unless a vacation block covers now';
    case 'unavailable':
      return 'treated as not working: their Tasks go to a cover or the pool when a patient writes';
    default:
      return 'their Tasks are always kept';
  }
}

/**
 * Plain words for a clinician, for Task notes.
 * @param availability - An availability.
 * @returns E.g. "outside their working hours".
 */
export function describeAvailability(availability: Availability): string {
  switch (availability.reason) {
    case 'on-shift':
      return 'on shift';
    case 'off-shift':
      return 'outside their working hours';
    case 'absent':
      return 'away (vacation or leave on their schedule)';
    case 'no-working-hours':
      return 'not working (their schedule has no working hours set)';
    case 'no-time-zone':
      return 'available (no time zone on their profile, so working hours could not be read)';
    case 'invalid-time-zone':
      return 'unknown (their time zone is not valid)';
    case 'unreadable-rules':
      return 'unknown (their working hours cannot be read)';
    case 'no-schedule':
      return 'unknown (no active schedule)';
    default:
      return 'not checked';
  }
}
