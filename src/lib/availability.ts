// Reading a provider's availability from Medplum's `Schedule/{id}/$find`.
//
// `$find` answers with whole slots of the Schedule's `duration`, aligned to `alignmentInterval`
// and fitting wholly inside the query window, so asking "is anything free between now and
// now+60min?" directly finds nothing at 10:17 for a provider on duty all day with 30-minute slots.
// We widen the query to the slot grid and then test overlap with the window we care about.
import { getExtension, getExtensionValue } from '@medplum/core';
import type { Bundle, Duration, Parameters, Resource, Schedule, Slot } from '@medplum/fhirtypes';

export const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
export const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** A half-open time interval [start, end) in epoch milliseconds. */
export interface Interval {
  start: number;
  end: number;
}

/** The slot grid of a Schedule, in minutes, as `$find` builds it. */
export interface SlotGrid {
  /** Slot length plus buffers: the span `$find` needs free to offer a slot. */
  spanMinutes: number;
  alignmentMinutes: number;
}

/**
 * Reads the slot grid from a Schedule's scheduling-parameters extension.
 * @param schedule - The Schedule.
 * @returns The grid, or undefined when the Schedule has no usable scheduling parameters (no extension or no `duration`).
 */
export function getSlotGrid(schedule: Schedule): SlotGrid | undefined {
  const ext = getExtension(schedule, SCHEDULING_PARAMETERS_URL);
  if (!ext) {
    return undefined;
  }
  const minutes = (url: string): number | undefined => durationMinutes(getExtensionValue(ext, url) as Duration);
  const duration = minutes('duration');
  if (!duration) {
    return undefined;
  }
  const alignment = minutes('alignmentInterval') || 60; // 0 or absent means "on the hour"
  return {
    spanMinutes: duration + (minutes('bufferBefore') ?? 0) + (minutes('bufferAfter') ?? 0),
    alignmentMinutes: alignment,
  };
}

function durationMinutes(duration: Duration | undefined): number | undefined {
  if (duration?.value === undefined) {
    return undefined;
  }
  const perUnit: Record<string, number> = { min: 1, h: 60, d: 1440, wk: 10080 };
  const factor = perUnit[duration.unit ?? duration.code ?? ''];
  return factor === undefined ? undefined : duration.value * factor;
}

/**
 * Returns the IANA time zone of a Schedule actor (Practitioner, PractitionerRole, ...).
 * @param actor - The actor resource.
 * @returns The time zone code, or undefined when the actor has none.
 */
export function getTimeZone(actor: Resource | undefined): string | undefined {
  return actor ? (getExtensionValue(actor, TIMEZONE_URL) as string | undefined) : undefined;
}

/**
 * The offset of a time zone from UTC at an instant.
 * @param epochMs - The instant.
 * @param timeZone - IANA time zone.
 * @returns Local time minus UTC, in milliseconds.
 */
export function timeZoneOffsetMs(epochMs: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(epochMs));
  const part = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  const localAsUtc = Date.UTC(
    part('year'),
    part('month') - 1,
    part('day'),
    part('hour'),
    part('minute'),
    part('second')
  );
  return localAsUtc - (epochMs - (((epochMs % 1000) + 1000) % 1000));
}

/**
 * The local calendar date of an instant in a time zone, as days since the epoch.
 * @param epochMs - The instant.
 * @param timeZone - IANA time zone.
 * @returns Whole days since 1970-01-01 of the local date.
 */
export function localEpochDay(epochMs: number, timeZone: string): number {
  return Math.floor((epochMs + timeZoneOffsetMs(epochMs, timeZone)) / DAY_MS);
}

/**
 * Converts a local wall-clock time in a time zone to an instant.
 * @param epochDay - Local date as days since 1970-01-01.
 * @param minuteOfDay - Local minutes after midnight.
 * @param timeZone - IANA time zone.
 * @returns The instant in epoch milliseconds.
 */
export function zonedTimeToEpochMs(epochDay: number, minuteOfDay: number, timeZone: string): number {
  const wallClockAsUtc = epochDay * DAY_MS + minuteOfDay * MINUTE_MS;
  const firstGuess = wallClockAsUtc - timeZoneOffsetMs(wallClockAsUtc, timeZone);
  return wallClockAsUtc - timeZoneOffsetMs(firstGuess, timeZone);
}

/**
 * Computes the `$find` query window that finds every grid slot overlapping `[now, now + windowMinutes)`.
 *
 * - Start one slot span before now (a slot that began earlier may still be running) and end one
 *   span after the window, aligned down/up to the grid.
 * - The server derives the first local day it expands availability for from the UTC calendar date
 *   of `start`; west of UTC in the local evening that date is already "tomorrow" and today's
 *   evening hours would be missed. Starting just before that UTC midnight keeps today in.
 * @param now - Current instant.
 * @param windowMinutes - How far ahead the owner must be reachable.
 * @param grid - The Schedule's slot grid.
 * @param timeZone - The Schedule actor's time zone, when known.
 * @returns The query window.
 */
export function findQueryWindow(now: number, windowMinutes: number, grid: SlotGrid, timeZone?: string): Interval {
  const alignMs = grid.alignmentMinutes * MINUTE_MS;
  const spanMs = grid.spanMinutes * MINUTE_MS;
  let start = Math.floor((now - spanMs) / alignMs) * alignMs;
  const end = Math.ceil((now + windowMinutes * MINUTE_MS + spanMs) / alignMs) * alignMs;
  if (timeZone) {
    const utcDay = Math.floor(start / DAY_MS);
    if (localEpochDay(start, timeZone) < utcDay) {
      start = Math.min(start, utcDay * DAY_MS - MINUTE_MS);
    }
  }
  return { start, end };
}

/**
 * Extracts the Slots from a `$find` response: a Medplum server returns the Bundle directly,
 * Medplum's docs show it wrapped in `Parameters` (`return` or `bundle`); accept both.
 * @param response - The response body.
 * @returns The Slots, empty when none are free.
 */
export function slotsFromFindResponse(response: Bundle | Parameters | undefined): Slot[] {
  let bundle: Bundle | undefined;
  if (response?.resourceType === 'Parameters') {
    bundle = response.parameter?.find((p) => p.resource?.resourceType === 'Bundle')?.resource as Bundle | undefined;
  } else if (response?.resourceType === 'Bundle') {
    bundle = response;
  }
  return (bundle?.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Slot => r?.resourceType === 'Slot');
}

/**
 * Whether any free slot overlaps an interval.
 * @param slots - Slots from `$find`.
 * @param interval - The interval.
 * @returns True when a free slot overlaps.
 */
export function hasFreeSlotOverlapping(slots: Slot[], interval: Interval): boolean {
  return slots.some((slot) => {
    if (slot.status !== 'free') {
      return false;
    }
    const start = Date.parse(slot.start);
    const end = Date.parse(slot.end);
    return start < interval.end && end > interval.start;
  });
}
