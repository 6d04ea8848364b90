// `GET Schedule/{id}/$find?start=&end=[&service-type=]` as the Medplum server answers it, written from
// the server's source (packages/server/src/fhir/operations/find.ts and utils/find.ts on the $find
// branch) with the library it uses, temporal-polyfill. It imports nothing from src/: the bots'
// own time-zone arithmetic is what this emulation checks.
//
// The server's behaviour, quirks included:
// - the Bundle is returned directly (no Parameters), no `entry` key when nothing is free;
// - the time zone is the Schedule actor's (400 "No timezone specified" without one, 400 "Invalid time
//   zone specified" for a code that is not an IANA zone); exactly one actor, or 400;
// - each scheduling-parameters extension is its own set of rules (availability, duration, buffers,
//   alignment, service types); with `service-type`, the sets tied to one of those types are used,
//   else (or when none match) only the sets tied to no service type ("wildcard");
// - availability is expanded per local day starting from the *UTC* calendar date of `start` (the
//   server process's zone): a shift that began on the previous local day is missing;
// - `free` Slots add availability, `busy` and `busy-unavailable` remove it; 1000 Slots in the window
//   is a 400 ("Too many slots");
// - slots are whole `duration` (+ buffers) spans aligned to `alignmentInterval` (0/absent = 60) on
//   the UTC minute of the hour, inside the window; at most 20 in all, the first set's first.
import type { Bundle, Duration, Extension, OperationOutcome, Parameters, Resource, Schedule, Slot } from '@medplum/fhirtypes';
import { Temporal } from 'temporal-polyfill';

const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const PAGE = 20;
const MAX_SLOTS = 1000;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** How the emulation reads the store. */
export interface FindStore {
  readSchedule(id: string): Promise<Schedule | OperationOutcome>;
  readReference(ref: string): Promise<Resource>;
  searchSlots(scheduleRef: string): Promise<Slot[]>;
}

type Span = { start: number; end: number };
type Coding = { system: string; code: string };

interface Rules {
  availability: { dayOfWeek: string[]; timeOfDay: string[]; minutes: number }[];
  duration: number;
  bufferBefore: number;
  bufferAfter: number;
  alignment: number;
  alignmentOffset: number;
  serviceTypes: Coding[];
}

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
  const slots = (await store.searchSlots(`Schedule/${scheduleId}`)).filter(
    (s) =>
      ['busy', 'free', 'busy-unavailable'].includes(s.status) &&
      overlapsInclusive({ start: Date.parse(s.start), end: Date.parse(s.end) }, window)
  );
  if (slots.length >= MAX_SLOTS) {
    return invalid('Too many slots found in range; try searching with smaller bounds');
  }
  if (schedule.actor?.length !== 1) {
    return invalid('$find only supported on schedules with exactly one actor');
  }
  const actor = await store.readReference(schedule.actor[0].reference as string);
  const timeZone = actor.resourceType === 'OperationOutcome' ? undefined : extensionValue(actor, TIMEZONE_URL);
  if (!timeZone) {
    return invalid('No timezone specified');
  }
  const requested = query.get('service-type')?.split(',') ?? [];
  const found: Span[] = [];
  try {
    // Errors become 400s: a set without `duration`, and (only once a day is expanded) a time zone
    // that is not an IANA zone, in temporal-polyfill's words ("Invalid time zone specified: EASTERN").
    for (const set of selectRules(parseRules(schedule), requested)) {
      const available = merge([...expandAvailability(set, window, timeZone), ...freeSpans(slots, window)]);
      const open = subtract(available, merge(busySpans(slots)));
      found.push(...slotTimes(set, open, PAGE - found.length));
      if (found.length >= PAGE) {
        break;
      }
    }
  } catch (err) {
    return invalid((err as Error).message);
  }

  const bundle: Bundle<Slot> = { resourceType: 'Bundle', type: 'searchset' };
  if (found.length) {
    bundle.entry = found.slice(0, PAGE).map((s) => ({
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

function parseRules(schedule: Schedule): Rules[] {
  return (schedule.extension ?? [])
    .filter((e) => e.url === SCHEDULING_PARAMETERS_URL)
    .map((params) => {
      const sub = (url: string): Extension[] => (params.extension ?? []).filter((e) => e.url === url);
      const duration = sub('duration')[0]?.valueDuration;
      if (!duration) {
        throw new Error('Got scheduling parameters extension without required `duration` field');
      }
      return {
        availability: sub('availability').map((a) => ({
          dayOfWeek: (a.valueTiming?.repeat?.dayOfWeek ?? []) as string[],
          timeOfDay: (a.valueTiming?.repeat?.timeOfDay ?? []) as string[],
          minutes: minutes({ value: a.valueTiming?.repeat?.duration, unit: a.valueTiming?.repeat?.durationUnit }),
        })),
        duration: minutes(duration),
        bufferBefore: minutes(sub('bufferBefore')[0]?.valueDuration),
        bufferAfter: minutes(sub('bufferAfter')[0]?.valueDuration),
        alignment: minutes(sub('alignmentInterval')[0]?.valueDuration) || 60,
        alignmentOffset: minutes(sub('alignmentOffset')[0]?.valueDuration),
        serviceTypes: sub('serviceType').map((e) => e.valueCoding as Coding),
      };
    });
}

/** The server's filterByServiceTypes: the sets matching a requested type, else the wildcard sets. */
function selectRules(rules: Rules[], requested: string[]): Rules[] {
  if (requested.length) {
    const matching = rules.filter((r) => r.serviceTypes.some((c) => requested.includes(`${c.system}|${c.code}`)));
    if (matching.length) {
      return matching;
    }
  }
  return rules.filter((r) => r.serviceTypes.length === 0);
}

/** The server's resolveAvailability, with its first day taken from the UTC date of the window's start. */
function expandAvailability(rules: Rules, window: Span, timeZone: string): Span[] {
  const first = new Date(window.start);
  let day = Temporal.ZonedDateTime.from({
    year: first.getUTCFullYear(),
    month: first.getUTCMonth() + 1,
    day: first.getUTCDate(),
    timeZone,
  });
  const spans: Span[] = [];
  for (; day.epochMilliseconds < window.end; day = day.add({ days: 1 })) {
    const dayName = DAY_NAMES[day.dayOfWeek];
    for (const a of rules.availability.filter((r) => r.dayOfWeek.includes(dayName))) {
      for (const timeOfDay of a.timeOfDay) {
        const [hour, minute, second] = timeOfDay.split(':').map(Number);
        const start = day.withPlainTime({ hour, minute, second });
        const span = { start: start.epochMilliseconds, end: start.add({ minutes: a.minutes }).epochMilliseconds };
        if (span.start < window.end && window.start < span.end) {
          spans.push({ start: Math.max(span.start, window.start), end: Math.min(span.end, window.end) });
        }
      }
    }
  }
  return spans;
}

function freeSpans(slots: Slot[], window: Span): Span[] {
  return slots
    .filter((s) => s.status === 'free')
    .map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }))
    .filter((s) => s.start < window.end && window.start < s.end)
    .map((s) => ({ start: Math.max(s.start, window.start), end: Math.min(s.end, window.end) }));
}

function busySpans(slots: Slot[]): Span[] {
  return slots.filter((s) => s.status === 'busy' || s.status === 'busy-unavailable').map((s) => ({ start: Date.parse(s.start), end: Date.parse(s.end) }));
}

/** The server's findSlotTimes: aligned on the UTC minute of the hour, buffers inside the span. */
function slotTimes(rules: Rules, open: Span[], maxCount: number): Span[] {
  const span = rules.duration + rules.bufferBefore + rules.bufferAfter;
  const offset = rules.alignmentOffset - rules.bufferBefore;
  const out: Span[] = [];
  for (const interval of open) {
    let start = Math.ceil(interval.start / MINUTE) * MINUTE;
    const remainder = mod(new Date(start).getUTCMinutes() - offset, rules.alignment);
    start += remainder === 0 ? 0 : (rules.alignment - remainder) * MINUTE;
    for (; start + span * MINUTE <= interval.end && out.length < maxCount; start += rules.alignment * MINUTE) {
      out.push({ start: start + rules.bufferBefore * MINUTE, end: start + (span - rules.bufferAfter) * MINUTE });
    }
    if (out.length >= maxCount) {
      break;
    }
  }
  return out;
}

function mod(n: number, d: number): number {
  return ((n % d) + d) % d;
}

function minutes(d: Pick<Duration, 'value' | 'unit'> | undefined): number {
  const perUnit: Record<string, number> = { min: 1, h: 60, d: 1440, wk: 10080 };
  return d?.value === undefined ? 0 : d.value * (perUnit[d.unit ?? ''] ?? NaN);
}

function overlapsInclusive(a: Span, b: Span): boolean {
  return a.start <= b.end && b.start <= a.end;
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
          : [...(b.start > p.start ? [{ start: p.start, end: b.start }] : []), ...(b.end < p.end ? [{ start: b.end, end: p.end }] : [])]
      );
    }
    return pieces;
  });
}
