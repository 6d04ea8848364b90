// Builders for the resources the tests seed: providers with schedules, threads, messages, Tasks.
import type { Communication, Patient, Practitioner, Resource, Schedule, Slot, Task } from '@medplum/fhirtypes';
import type { ServerMock } from './server-mock';

export const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
export const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
/** A literal reference, assignable to any typed Reference. */
export type Ref = { reference: string };

export const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/**
 * A reference to a seeded resource.
 * @param resource - The resource.
 * @returns Its reference.
 */
export function ref(resource: Resource): Ref {
  // Without `display` (createReference adds names): references in tests carry no names.
  return { reference: `${resource.resourceType}/${resource.id}` };
}

/** Availability in local time: each listed day from `from` for `hours`. */
export interface Availability {
  days?: readonly string[];
  from?: string;
  hours?: number;
}

/** Options of a provider's Schedule. */
export interface ScheduleOptions {
  availability?: Availability[];
  /** Slot length in minutes; undefined omits `duration` (which `$find` rejects). */
  durationMinutes?: number | null;
  alignmentMinutes?: number;
  /** Omit the scheduling-parameters extension altogether. */
  noParameters?: boolean;
  active?: boolean;
}

/**
 * Seeds a Practitioner with a time zone (or none).
 * @param server - The server.
 * @param timeZone - IANA zone, or null for none.
 * @returns The Practitioner.
 */
export async function seedPractitioner(server: ServerMock, timeZone: string | null = 'America/New_York'): Promise<Practitioner & { id: string }> {
  return server.seed<Practitioner>({
    resourceType: 'Practitioner',
    name: [{ given: ['Pat'], family: 'Provider' }],
    extension: timeZone ? [{ url: TIMEZONE_URL, valueCode: timeZone }] : undefined,
  });
}

/**
 * Seeds a Schedule for one actor (or several).
 * @param server - The server.
 * @param actors - Schedule.actor.
 * @param options - Availability and grid.
 * @returns The Schedule.
 */
export async function seedSchedule(
  server: ServerMock,
  actors: Ref[],
  options: ScheduleOptions = {}
): Promise<Schedule & { id: string }> {
  const availability = options.availability ?? [{ days: ALL_DAYS, from: '09:00:00', hours: 8 }];
  const parameters = [
    ...availability.map((a) => ({
      url: 'availability',
      valueTiming: {
        repeat: {
          dayOfWeek: [...(a.days ?? ALL_DAYS)] as never,
          timeOfDay: [a.from ?? '09:00:00'],
          duration: a.hours ?? 8,
          durationUnit: 'h' as const,
        },
      },
    })),
    ...(options.durationMinutes === null
      ? []
      : [{ url: 'duration', valueDuration: { value: options.durationMinutes ?? 30, unit: 'min' } }]),
    ...(options.alignmentMinutes
      ? [{ url: 'alignmentInterval', valueDuration: { value: options.alignmentMinutes, unit: 'min' } }]
      : []),
  ];
  return server.seed<Schedule>({
    resourceType: 'Schedule',
    active: options.active ?? true,
    actor: actors,
    extension: options.noParameters ? undefined : [{ url: SCHEDULING_PARAMETERS_URL, extension: parameters }],
  });
}

/**
 * Seeds a busy-unavailable block (vacation) on a Schedule.
 * @param server - The server.
 * @param schedule - The Schedule.
 * @param start - ISO start.
 * @param end - ISO end.
 * @returns The Slot.
 */
export async function seedBlock(server: ServerMock, schedule: Schedule, start: string, end: string): Promise<Slot> {
  return server.seed<Slot>({ resourceType: 'Slot', schedule: ref(schedule), status: 'busy-unavailable', start, end });
}

/**
 * Seeds a Patient.
 * @param server - The server.
 * @returns The Patient.
 */
export async function seedPatient(server: ServerMock): Promise<Patient & { id: string }> {
  return server.seed<Patient>({ resourceType: 'Patient', name: [{ given: ['Secret'], family: 'Patientname' }] });
}

/**
 * Seeds a thread header.
 * @param server - The server.
 * @param fields - Extra or overriding fields.
 * @returns The header.
 */
export async function seedThread(server: ServerMock, fields: Partial<Communication> = {}): Promise<Communication & { id: string }> {
  return server.seed<Communication>({
    resourceType: 'Communication',
    status: 'in-progress',
    topic: { text: 'Thread topic with private words' },
    ...fields,
  });
}

/**
 * A message in a thread (not seeded: the OOO tests pass it as `event.input`).
 * @param thread - The header.
 * @param sender - Who wrote it.
 * @param fields - Extra or overriding fields.
 * @returns The message.
 */
export function message(thread: Communication, sender: Ref, fields: Partial<Communication> = {}): Communication {
  return {
    resourceType: 'Communication',
    status: 'in-progress',
    partOf: [ref(thread)],
    sender,
    payload: [{ contentString: 'PRIVATE MESSAGE TEXT' }],
    ...fields,
  };
}

/**
 * Seeds a response Task on a thread.
 * @param server - The server.
 * @param thread - The header.
 * @param fields - Extra or overriding fields (owner, status, note...).
 * @returns The Task.
 */
export async function seedTask(server: ServerMock, thread: Communication, fields: Partial<Task> = {}): Promise<Task & { id: string }> {
  return server.seed<Task>({
    resourceType: 'Task',
    status: 'in-progress',
    intent: 'order',
    priority: 'routine',
    code: { coding: [{ system: 'https://medplum.com/task-codes', code: 'respond-to-message' }] },
    focus: ref(thread),
    authoredOn: '2026-11-01T12:00:00.000Z',
    performerType: [{ coding: [{ system: 'http://snomed.info/sct', code: '158965000', display: 'Medical practitioner' }] }],
    ...fields,
  });
}
