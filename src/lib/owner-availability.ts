// Is a provider reachable now? Gathered from the provider's Schedules with `$find` (Medplum's word
// on free time) and, only when `$find` shows nothing free, one Slot search around now; decided by a
// pure function. See schedule-rules.ts for why working hours are also evaluated locally.
import { getReferenceString, getStatus, normalizeErrorString } from '@medplum/core';
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, OperationOutcome, Parameters, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import type { BotLog } from './bot-runtime';
import { isQuotaError } from './quota';
import { declaredTimeZone, findQueryWindow, isWorkingAt, parseRuleSets, selectRuleSets, serviceTypesToRequest } from './schedule-rules';
import type { Interval } from './schedule-rules';
import { isTimeZone } from './zoned-time';

/** `$find` returns at most this many slots (the server's DEFAULT_SEARCH_COUNT). */
export const FIND_PAGE_SIZE = 20;

/** Whether an owner can be reached now, and why we think so. */
export interface OwnerAvailability {
  state: 'available' | 'unavailable' | 'unknown';
  /** A short code-like reason, safe to log and to put in a Task note. */
  reason: string;
}

/** What the availability check is told. */
export interface AvailabilityOptions {
  now: number;
  /** The owner counts as available when free in [now, now + windowMinutes). */
  windowMinutes: number;
  /** `system|code` values for `$find`'s service-type (the OOO_SERVICE_TYPE secret). */
  serviceTypes: string[];
}

/** Everything decided about one Schedule, from what the server said. */
export interface ScheduleFacts {
  schedule: string;
  /** `$find`'s free slots; or the kind of error it answered. */
  find: { slots: Slot[] } | { error: 'refused' | 'failed'; detail: string };
  /** From the Slot search around now, when it was made. */
  slotsNow?: { blocked?: string; booked: boolean; freeSlot: boolean };
  /** Whether the Schedule's rules say the owner works now; undefined when they cannot tell (no rules, no zone). */
  working?: boolean;
}

/**
 * The pure decision for one Schedule.
 * @param facts - What the server said.
 * @param window - The interval the owner must be reachable in.
 * @returns The availability.
 */
export function decideSchedule(facts: ScheduleFacts, window: Interval): OwnerAvailability {
  const { find, slotsNow } = facts;
  if ('slots' in find && hasFreeSlotOverlapping(find.slots, window)) {
    return { state: 'available', reason: 'free-slot' };
  }
  if ('error' in find && find.error === 'failed') {
    return { state: 'unknown', reason: 'find-failed' };
  }
  if (!slotsNow) {
    return { state: 'unknown', reason: 'slots-not-read' };
  }
  if (slotsNow.blocked) {
    return { state: 'unavailable', reason: `blocked:${slotsNow.blocked}` };
  }
  const working = facts.working || slotsNow.freeSlot;
  if (slotsNow.booked && facts.working !== false) {
    // Seeing patients is being in the office: `$find` removes booked time as it removes vacation.
    return { state: 'available', reason: 'booked' };
  }
  if ('slots' in find && find.slots.length < FIND_PAGE_SIZE) {
    return { state: 'unavailable', reason: `no-free-slot:${facts.schedule}` };
  }
  // `$find` filled its page before the window, or could not be asked: the rules decide.
  if (working) {
    return { state: 'available', reason: 'working-hours' };
  }
  if (facts.working === false) {
    return { state: 'unavailable', reason: `off-hours:${facts.schedule}` };
  }
  return { state: 'available', reason: 'no-block-fallback' };
}

/**
 * Combines an owner's Schedules: available if any is; unknown if any cannot tell; else unavailable.
 * @param results - One availability per active Schedule.
 * @returns The owner's availability.
 */
export function combineSchedules(results: OwnerAvailability[]): OwnerAvailability {
  if (results.length === 0) {
    return { state: 'unknown', reason: 'no-active-schedule' };
  }
  const available = results.find((r) => r.state === 'available');
  if (available) {
    return available;
  }
  // An unreadable Schedule next to an empty one does not prove absence.
  const unknown = results.some((r) => r.state === 'unknown');
  return { state: unknown ? 'unknown' : 'unavailable', reason: results.map((r) => r.reason).join(',') };
}

/**
 * Whether any free slot overlaps an interval.
 * @param slots - Slots from `$find`.
 * @param interval - The interval.
 * @returns True when a free slot overlaps.
 */
export function hasFreeSlotOverlapping(slots: Slot[], interval: Interval): boolean {
  return slots.some((slot) => slot.status === 'free' && Date.parse(slot.start) < interval.end && Date.parse(slot.end) > interval.start);
}

/**
 * Extracts the Slots from a `$find` response: a Medplum server returns the Bundle directly,
 * Medplum's docs show it wrapped in `Parameters`; accept both.
 * @param response - The response body.
 * @returns The Slots, empty when none are free.
 */
export function slotsFromFindResponse(response: Bundle | Parameters | undefined): Slot[] {
  const bundle =
    response?.resourceType === 'Parameters'
      ? (response.parameter?.find((p) => p.resource?.resourceType === 'Bundle')?.resource as Bundle | undefined)
      : response?.resourceType === 'Bundle'
        ? response
        : undefined;
  return (bundle?.entry ?? []).map((e) => e.resource).filter((r): r is Slot => r?.resourceType === 'Slot');
}

/**
 * Checks one owner over all their active Schedules.
 * @param medplum - The client.
 * @param owner - The owner resource (for its time zone), when it could be read.
 * @param schedules - The owner's Schedules.
 * @param options - Time, window, service types.
 * @param log - Logger.
 * @returns The owner's availability. A quota refusal is thrown, so the caller can defer.
 */
export async function checkOwner(
  medplum: MedplumClient,
  owner: Resource | undefined,
  schedules: WithId<Schedule>[],
  options: AvailabilityOptions,
  log: BotLog
): Promise<OwnerAvailability> {
  const timeZone = declaredTimeZone(owner as { extension?: [] } | undefined);
  if (timeZone !== undefined && !isTimeZone(timeZone)) {
    log.warn(`${owner ? getReferenceString(owner as WithId<Resource>) : 'owner'} has time zone code that is not an IANA zone; availability unknown`);
    return { state: 'unknown', reason: 'invalid-time-zone' };
  }
  const results: OwnerAvailability[] = [];
  for (const schedule of schedules.filter((s) => s.active !== false)) {
    const result = await checkSchedule(medplum, schedule, timeZone, options, log);
    if (result.state === 'available') {
      return result;
    }
    results.push(result);
  }
  return combineSchedules(results);
}

async function checkSchedule(
  medplum: MedplumClient,
  schedule: WithId<Schedule>,
  timeZone: string | undefined,
  options: AvailabilityOptions,
  log: BotLog
): Promise<OwnerAvailability> {
  const ref = getReferenceString(schedule);
  const window = { start: options.now, end: options.now + options.windowMinutes * 60_000 };
  const parsed = parseRuleSets(schedule);
  const allSets = 'sets' in parsed ? parsed.sets : [];
  const serviceTypes = serviceTypesToRequest(allSets, options.serviceTypes);
  const sets = selectRuleSets(allSets, serviceTypes);
  const facts: ScheduleFacts = {
    schedule: ref,
    find: await findFreeSlots(medplum, schedule, findQueryWindow(options.now, options.windowMinutes, sets, timeZone), serviceTypes, log),
    working: timeZone && 'sets' in parsed && allSets.length ? isWorkingAt(sets, timeZone, options.now) : undefined,
  };
  if (!('slots' in facts.find && hasFreeSlotOverlapping(facts.find.slots, window)) && !('error' in facts.find && facts.find.error === 'failed')) {
    facts.slotsNow = await slotsAround(medplum, ref, options.now, log);
  }
  return decideSchedule(facts, window);
}

async function findFreeSlots(
  medplum: MedplumClient,
  schedule: WithId<Schedule>,
  query: Interval,
  serviceTypes: string[],
  log: BotLog
): Promise<ScheduleFacts['find']> {
  const url = medplum.fhirUrl('Schedule', schedule.id, '$find');
  url.searchParams.set('start', new Date(query.start).toISOString());
  url.searchParams.set('end', new Date(query.end).toISOString());
  if (serviceTypes.length) {
    url.searchParams.set('service-type', serviceTypes.join(','));
  }
  try {
    return { slots: slotsFromFindResponse(await medplum.get<Bundle | Parameters>(url, { cache: 'no-cache' })) };
  } catch (err) {
    if (isQuotaError(err)) {
      throw err;
    }
    const status = errorStatus(err);
    const detail = normalizeErrorString(err);
    if (status === 404 || status === 400) {
      // 404: a server without `$find`; 400: no actor time zone, several actors, rules without duration.
      log.warn(`${getReferenceString(schedule)}/$find answered ${status} (${detail}); deciding from its rules and Slots`);
      return { error: 'refused', detail };
    }
    log.warn(`${getReferenceString(schedule)}/$find failed (${detail}); availability unknown`);
    return { error: 'failed', detail };
  }
}

/**
 * The Slots covering now: a vacation block, an appointment, an extra free slot.
 * @param medplum - The client.
 * @param scheduleRef - The Schedule.
 * @param now - Current instant.
 * @param log - Logger.
 * @returns What covers now, or undefined when the search failed.
 */
async function slotsAround(medplum: MedplumClient, scheduleRef: string, now: number, log: BotLog): Promise<ScheduleFacts['slotsNow']> {
  const instant = new Date(now).toISOString();
  try {
    const slots = await medplum.searchResources(
      'Slot',
      [
        ['schedule', scheduleRef],
        ['start', `le${instant}`],
        ['end', `gt${instant}`],
        ['_count', '100'],
      ],
      { cache: 'no-cache' }
    );
    // Date search compares ranges at the precision of the value, so a Slot ending exactly now can
    // match `end=gt<now>`: the exact instant check is made here.
    const covering = slots.filter((s) => Date.parse(s.start) <= now && Date.parse(s.end) > now);
    const blocked = covering.find((s) => s.status === 'busy-unavailable');
    return {
      blocked: blocked ? getReferenceString(blocked) : undefined,
      booked: covering.some((s) => s.status === 'busy'),
      freeSlot: covering.some((s) => s.status === 'free'),
    };
  } catch (err) {
    if (isQuotaError(err)) {
      throw err;
    }
    log.warn(`${scheduleRef}: Slot search failed (${normalizeErrorString(err)})`);
    return undefined;
  }
}

function errorStatus(err: unknown): number | undefined {
  const outcome = (err as { outcome?: OperationOutcome }).outcome;
  return outcome?.resourceType === 'OperationOutcome' ? getStatus(outcome) : undefined;
}
