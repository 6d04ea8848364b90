// `GET Schedule/{id}/$find?start=&end=` as the Medplum server (v5 + the $find branch) answers it.
// Written from the server's behaviour (shared/realserver/server-behaviour.md), including its quirks:
// - the Bundle is returned directly (no Parameters), no `entry` key when nothing is free;
// - availability comes from the scheduling-parameters extension in the actor's time zone;
// - slots are whole `duration` (+ buffers) spans aligned to `alignmentInterval` (0/absent = 60)
//   on the UTC minute-of-hour, fitting wholly inside the window and the availability;
// - `free` Slots add availability, `busy`/`busy-unavailable` Slots remove it; at most 20 slots;
// - local days are expanded from the *UTC* calendar date of `start` (the server's process zone).
import type { Bundle, Duration, Extension, OperationOutcome, Parameters, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import { zonedTimeToEpochMs } from '../../src/lib/availability';

const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const PAGE = 20;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** How the emulation reads the store. */
export interface FindStore {
  readSchedule(id: string): Promise<Schedule | OperationOutcome>;
  readReference(ref: string): Promise<Resource>;
  searchSlots(scheduleRef: string): Promise<Slot[]>;
}

type Span = { start: number; end: number };

/**
 * Answers a `$find` request.
 * @param store - Store access.
 * @param scheduleId - The Schedule id from the path.
 * @param query - The query string.
 * @param asParameters - Wrap the Bundle in Parameters (as Medplum's docs show) instead of returning it directly.
 * @returns Status and body.
 */
export async function emulateFind(
  store: FindStore,
  scheduleId: string,
  query: URLSearchParams,
  asParameters: boolean
): Promise<{ status: number; body: unknown }> {
  for (const name of ['start', 'end']) {
    if (!query.get(name)) {
      return invalid(`Expected at least 1 value(s) for required input parameter '${name}'`);
    }
  }
  const window = { start: Date.parse(query.get('start') as string), end: Date.parse(query.get('end') as string) };
  if (!(window.start < window.end)) {
    return invalid('Invalid search time range');
  }
  if ((window.end - window.start) / DAY > 31) {
    return invalid('Search range cannot exceed 31 days');
  }
  const schedule = await store.readSchedule(scheduleId);
  if (schedule.resourceType !== 'Schedule') {
    return { status: 404, body: schedule };
  }
  if (schedule.actor?.length !== 1) {
    return invalid('$find only supported on schedules with exactly one actor');
  }
  const actor = await store.readReference(schedule.actor[0].reference as string);
  const timeZone = actor.resourceType === 'OperationOutcome' ? undefined : extensionValue(actor, TIMEZONE_URL);
  if (!timeZone) {
    return invalid('No timezone specified');
  }
  const params = (schedule.extension ?? []).find((e) => e.url === SCHEDULING_PARAMETERS_URL);
  let spans: Span[] = [];
  if (params) {
    const sub = (url: string): Extension[] => (params.extension ?? []).filter((e) => e.url === url);
    const duration = sub('duration')[0]?.valueDuration;
    if (!duration) {
      return invalid('Got scheduling parameters extension without required `duration` field');
    }
    const minutes = (d: Duration | undefined): number =>
      d ? (d.value ?? 0) * ({ min: 1, h: 60, d: 1440, wk: 10080 } as Record<string, number>)[d.unit ?? 'min'] : 0;
    const bufferBefore = minutes(sub('bufferBefore')[0]?.valueDuration);
    const bufferAfter = minutes(sub('bufferAfter')[0]?.valueDuration);
    const alignment = minutes(sub('alignmentInterval')[0]?.valueDuration) || 60;
    const alignmentOffset = minutes(sub('alignmentOffset')[0]?.valueDuration);

    const available: Span[] = [];
    // The server's quirk: the first local day is the UTC calendar date of `start`.
    for (let day = Math.floor(window.start / DAY); zonedTimeToEpochMs(day, 0, timeZone) < window.end; day++) {
      const dayName = DAY_NAMES[new Date(day * DAY).getUTCDay()];
      for (const a of sub('availability')) {
        const repeat = a.valueTiming?.repeat;
        if (!repeat?.dayOfWeek?.includes(dayName as never)) {
          continue;
        }
        for (const timeOfDay of repeat.timeOfDay ?? []) {
          const [h, m, s] = timeOfDay.split(':').map(Number);
          const start = zonedTimeToEpochMs(day, h * 60 + m, timeZone) + (s || 0) * 1000;
          const end = start + minutes({ value: repeat.duration, unit: repeat.durationUnit }) * MINUTE;
          const clipped = { start: Math.max(start, window.start), end: Math.min(end, window.end) };
          if (clipped.start < clipped.end) {
            available.push(clipped);
          }
        }
      }
    }
    const slots = await store.searchSlots(`Schedule/${scheduleId}`);
    const inWindow = slots.filter((s) => Date.parse(s.start) <= window.end && Date.parse(s.end) >= window.start);
    const free = inWindow
      .filter((s) => s.status === 'free')
      .map((s) => ({ start: Math.max(Date.parse(s.start), window.start), end: Math.min(Date.parse(s.end), window.end) }));
    const busy = inWindow
      .filter((s) => s.status === 'busy' || s.status === 'busy-unavailable')
      .map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));
    const open = subtract(merge([...available, ...free]), merge(busy));

    const span = minutes(duration) + bufferBefore + bufferAfter;
    for (const interval of open) {
      let start = Math.ceil(interval.start / MINUTE) * MINUTE;
      const minuteOfHour = new Date(start).getUTCMinutes();
      const remainder = (((minuteOfHour - (alignmentOffset - bufferBefore)) % alignment) + alignment) % alignment;
      start += remainder === 0 ? 0 : (alignment - remainder) * MINUTE;
      for (; start + span * MINUTE <= interval.end && spans.length < PAGE; start += alignment * MINUTE) {
        spans.push({ start: start + bufferBefore * MINUTE, end: start + (span - bufferAfter) * MINUTE });
      }
    }
    spans = spans.slice(0, PAGE);
  }
  const bundle: Bundle<Slot> = { resourceType: 'Bundle', type: 'searchset' };
  if (spans.length) {
    bundle.entry = spans.map((s) => ({
      resource: {
        resourceType: 'Slot',
        start: new Date(s.start).toISOString(),
        end: new Date(s.end).toISOString(),
        schedule: { reference: `Schedule/${scheduleId}` },
        status: 'free',
      },
    }));
  }
  if (asParameters) {
    const parameters: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'return', resource: bundle }] };
    return { status: 200, body: parameters };
  }
  return { status: 200, body: bundle };
}

function extensionValue(resource: Resource, url: string): string | undefined {
  return ((resource as { extension?: Extension[] }).extension ?? []).find((e) => e.url === url)?.valueCode;
}

function invalid(text: string): { status: number; body: OperationOutcome } {
  return {
    status: 400,
    body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text } }] },
  };
}

function merge(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out.at(-1);
    if (last && s.start <= last.end) {
      last.end = Math.max(last.end, s.end);
    } else {
      out.push({ ...s });
    }
  }
  return out;
}

function subtract(open: Span[], blocked: Span[]): Span[] {
  return open.flatMap((o) => {
    let pieces = [o];
    for (const b of blocked) {
      pieces = pieces.flatMap((p) =>
        b.end <= p.start || b.start >= p.end
          ? [p]
          : [
              ...(b.start > p.start ? [{ start: p.start, end: b.start }] : []),
              ...(b.end < p.end ? [{ start: b.end, end: p.end }] : []),
            ]
      );
    }
    return pieces;
  });
}
