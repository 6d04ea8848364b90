// The clinic: providers in two or three time zones with day, evening, overnight, weekend and split
// shifts (weekends off for most), covers, patients and the people who write for them, automated
// senders, response rules, business hours. Pure data from a seed; `seedClinic` stores it. The oracle
// reads the same data (the hours as rules, not as Schedules), never the bots' view of them.
import type { Communication, Device, Organization, Patient, Practitioner, RelatedPerson, Schedule, Slot } from '@medplum/fhirtypes';
import type { SimServer } from './store';
import { DAY_NAMES, nextOnShift, onShift } from './oracle/hours';
import type { Absence, DayName, OpeningHours, ShiftRule } from './oracle/hours';
import type { Rng } from './prng';

export const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
export const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
export const CATEGORY_SYSTEM = 'http://example.org/thread-category';
export const RESPONSE_CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-message' };
export const REMINDER_CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' };
export const PRIORITIES = ['routine', 'urgent', 'asap', 'stat'] as const;
export type Priority = (typeof PRIORITIES)[number];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEKDAYS: DayName[] = ['mon', 'tue', 'wed', 'thu', 'fri'];

export type ShiftKind = 'day' | 'evening' | 'overnight' | 'weekend' | 'split';

export interface Provider {
  id: string;
  ref: string;
  zone: string;
  shift: ShiftKind;
  rules: ShiftRule[];
  schedule: string;
  /** OOO_COVERAGE: who covers for them. */
  cover?: string;
  /** Busy-unavailable Slots, with when each was recorded (filled as the script records them). */
  absences: Absence[];
}

/** A response rule, as the clinic wrote it in STALE_RULES (the oracle matches it itself). */
export interface Rule {
  category?: string;
  priority?: Priority;
  afterHours: number;
  escalateAfterHours?: number;
  reminderPriority?: Priority;
}

export interface Clinic {
  seed: number;
  start: number;
  end: number;
  zones: string[];
  providers: Provider[];
  patients: string[];
  /** RelatedPerson → the patient they write for. */
  related: Map<string, string>;
  automated: string[];
  rules: Rule[];
  defaultAfterHours: number;
  defaultEscalateHours: number;
  businessHours?: OpeningHours;
  /** The Bot secrets both bots get. */
  secrets: Record<string, string>;
}

export const ZONES = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles', 'America/Phoenix'];

/**
 * Generates a clinic.
 * @param rng - The clinic's stream.
 * @param options - Seed, start, days, providers.
 * @returns The clinic.
 */
export function generateClinic(rng: Rng, options: { seed: number; start: number; days: number; providers?: number }): Clinic {
  const zones = [ZONES[0], ...shuffle(rng, ZONES.slice(1)).slice(0, rng.int(1, 2))];
  const count = options.providers ?? rng.int(10, 40);
  const providers: Provider[] = [];
  for (let i = 0; i < count; i++) {
    const shift: ShiftKind = i < 3 ? (['day', 'overnight', 'weekend'] as const)[i] : rng.weighted({ day: 50, evening: 15, overnight: 15, weekend: 10, split: 10 });
    providers.push({
      id: `pr${i + 1}`,
      ref: `Practitioner/pr${i + 1}`,
      zone: i === 0 ? zones[0] : rng.pick(zones),
      shift,
      rules: shiftRules(rng, shift),
      schedule: `Schedule/sc${i + 1}`,
      absences: [],
    });
  }
  for (const p of providers) {
    if (rng.chance(0.6)) {
      const others = providers.filter((o) => o !== p && o.shift !== p.shift);
      p.cover = rng.pick(others.length ? others : providers.filter((o) => o !== p)).ref;
    }
  }
  const patients = Array.from({ length: count * 4 }, (_, i) => `Patient/pa${i + 1}`);
  const related = new Map<string, string>();
  for (let i = 0; i < Math.ceil(count / 2); i++) {
    related.set(`RelatedPerson/rp${i + 1}`, rng.pick(patients));
  }
  const rules: Rule[] = [
    { priority: 'asap', afterHours: 2, escalateAfterHours: 1, reminderPriority: 'stat' },
    { priority: 'urgent', afterHours: 4, escalateAfterHours: 2, reminderPriority: 'asap' },
    { category: `${CATEGORY_SYSTEM}|clinical`, afterHours: 24, escalateAfterHours: 8 },
    { category: `${CATEGORY_SYSTEM}|billing`, afterHours: 72 },
  ];
  const end = options.start + options.days * DAY;
  const businessHours: OpeningHours | undefined =
    options.seed % 3 === 2
      ? undefined
      : {
          zone: zones[0],
          week: [[], [[480, 720], [780, 1080]], [[480, 720], [780, 1080]], [[480, 720], [780, 1080]], [[480, 720], [780, 1080]], [[480, 720], [780, 1020]], [[540, 720]]],
          closed: [closedDay(options.start, options.days, zones[0])],
        };
  const coverage = Object.fromEntries(providers.filter((p) => p.cover).map((p) => [p.ref, p.cover as string]));
  const secrets: Record<string, string> = {
    RESPONSE_TASKS: 'on',
    OOO_COVERAGE: JSON.stringify(coverage),
    STALE_RULES: JSON.stringify(rules),
    STALE_AFTER_HOURS: '48',
    ESCALATE_AFTER_HOURS: '24',
    BOT_TIMEOUT_SECONDS: '60',
  };
  if (businessHours) {
    const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    secrets.BUSINESS_HOURS = JSON.stringify({
      timeZone: businessHours.zone,
      hours: Object.fromEntries(DAY_NAMES.map((d, i) => [d, businessHours.week[i].map(([s, e]) => [hhmm(s), hhmm(e)])])),
      closed: businessHours.closed,
    });
  }
  return {
    seed: options.seed,
    start: options.start,
    end,
    zones,
    providers,
    patients,
    related,
    automated: ['Device/auto-ack', 'Organization/clinic'],
    rules,
    defaultAfterHours: 48,
    defaultEscalateHours: 24,
    businessHours,
    secrets,
  };
}

function shiftRules(rng: Rng, kind: ShiftKind): ShiftRule[] {
  switch (kind) {
    case 'day': {
      const start = rng.pick([7 * 60, 8 * 60, 9 * 60]);
      return [{ days: WEEKDAYS, start, minutes: rng.pick([8, 9, 10]) * 60 }];
    }
    case 'evening':
      return [{ days: WEEKDAYS, start: rng.pick([13 * 60, 14 * 60, 15 * 60]), minutes: 9 * 60 }];
    case 'overnight':
      // Sunday to Thursday nights, across midnight (and across a daylight-saving change).
      return [{ days: ['sun', 'mon', 'tue', 'wed', 'thu'], start: rng.pick([21 * 60, 22 * 60]), minutes: 10 * 60 }];
    case 'weekend':
      return [{ days: ['fri', 'sat', 'sun'], start: 7 * 60, minutes: 12 * 60 }];
    case 'split':
      return [
        { days: ['mon', 'wed', 'fri'], start: 8 * 60, minutes: 5 * 60 },
        { days: ['tue', 'thu'], start: 12 * 60 + 30, minutes: 6 * 60 },
      ];
  }
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A weekday inside the run the clinic is closed (a holiday): the first after the first day. */
function closedDay(start: number, days: number, zone: string): string {
  const format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short' });
  for (let n = 1; n < Math.max(days, 2); n++) {
    const parts = Object.fromEntries(format.formatToParts(start + n * DAY + 12 * HOUR).map((p) => [p.type, p.value]));
    if (!['Sat', 'Sun'].includes(parts.weekday)) {
      return `${parts.year}-${parts.month}-${parts.day}`;
    }
  }
  return '2000-01-01';
}

/**
 * Whether a provider is at work at an instant (the oracle's definition, for the script's choices).
 * @param p - The provider.
 * @param instant - Epoch ms.
 * @returns True when on shift and not absent (absences recorded by then).
 */
export function atWork(p: Provider, instant: number): boolean {
  return onShift(p.zone, p.rules, instant) && !p.absences.some((a) => a.recordedAt <= instant && a.start <= instant && instant < a.end);
}

/**
 * When a provider is next on shift (for a reply they will write at work).
 * @param p - The provider.
 * @param from - Epoch ms.
 * @returns Epoch ms.
 */
export function nextShift(p: Provider, from: number): number {
  return nextOnShift(p.zone, p.rules, from) ?? from;
}

/** The Schedule of a provider, as the bots read it (scheduling-parameters, the actor's zone). */
function schedule(p: Provider): Schedule {
  return {
    resourceType: 'Schedule',
    id: p.schedule.split('/')[1],
    active: true,
    actor: [{ reference: p.ref }],
    extension: [
      {
        url: SCHEDULING_PARAMETERS_URL,
        extension: [
          ...p.rules.map((r) => ({
            url: 'availability',
            valueTiming: {
              repeat: {
                dayOfWeek: r.days,
                timeOfDay: [`${String(Math.floor(r.start / 60)).padStart(2, '0')}:${String(r.start % 60).padStart(2, '0')}:00`],
                duration: r.minutes / 60,
                durationUnit: 'h' as const,
              },
            },
          })),
          { url: 'duration', valueDuration: { value: 30, unit: 'min' } },
        ],
      },
    ],
  };
}

/**
 * Stores the clinic's people and Schedules, and the appointments (busy Slots) of every working day.
 * @param sim - The server.
 * @param clinic - The clinic.
 * @param rng - For the appointments.
 */
export async function seedClinic(sim: SimServer, clinic: Clinic, rng: Rng): Promise<void> {
  const { server } = sim;
  const at = { lastUpdated: new Date(clinic.start - 30 * DAY).toISOString() };
  for (const p of clinic.providers) {
    await server.seed<Practitioner>({
      resourceType: 'Practitioner',
      id: p.id,
      meta: at,
      name: [{ given: ['Sim'], family: `PHI-PROVIDER-${p.id}` }],
      extension: [{ url: TIMEZONE_URL, valueCode: p.zone }],
    });
    await server.seed<Schedule>({ ...schedule(p), meta: at });
    // Appointments: never an absence. One a working day, inside the shift.
    for (let t = clinic.start; t < clinic.end; t += DAY) {
      const slotStart = t + rng.int(0, 23) * HOUR;
      if (onShift(p.zone, p.rules, slotStart) && rng.chance(0.7)) {
        await server.seed<Slot>({
          resourceType: 'Slot',
          meta: at,
          schedule: { reference: p.schedule },
          status: 'busy',
          start: new Date(slotStart).toISOString(),
          end: new Date(slotStart + 30 * MINUTE).toISOString(),
        });
      }
    }
  }
  for (const ref of clinic.patients) {
    await server.seed<Patient>({ resourceType: 'Patient', id: ref.split('/')[1], meta: at, name: [{ family: 'PHI-PATIENT' }] });
  }
  for (const [ref, patient] of clinic.related) {
    await server.seed<RelatedPerson>({ resourceType: 'RelatedPerson', id: ref.split('/')[1], meta: at, patient: { reference: patient } });
  }
  await server.seed<Device>({ resourceType: 'Device', id: 'auto-ack', meta: at });
  await server.seed<Organization>({ resourceType: 'Organization', id: 'clinic', meta: at, name: 'PHI-CLINIC' });
}

/** The header of a thread, as people create it. */
export function headerResource(fields: {
  id: string;
  subject: string;
  recipients: string[];
  priority: Priority;
  category: string;
  sender?: string;
  at: number;
}): Communication {
  return {
    resourceType: 'Communication',
    id: fields.id,
    meta: { lastUpdated: new Date(fields.at).toISOString() },
    status: 'in-progress',
    subject: { reference: fields.subject },
    recipient: fields.recipients.map((reference) => ({ reference })),
    priority: fields.priority,
    category: [{ coding: [{ system: CATEGORY_SYSTEM, code: fields.category }] }],
    topic: { text: 'PHI-TOPIC' },
    ...(fields.sender ? { sender: { reference: fields.sender }, sent: new Date(fields.at).toISOString() } : {}),
  };
}
