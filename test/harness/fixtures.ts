// Builders for the resources the tests seed: providers with schedules, threads, messages, Tasks.
import type { BotEvent } from '@medplum/core';
import type { Communication, Patient, Practitioner, ProjectSetting, Resource, Schedule, Slot, Task } from '@medplum/fhirtypes';
import type { ServerMock } from './server-mock';

export const SCHEDULING_PARAMETERS_URL = 'http://medplum.com/fhir/StructureDefinition/scheduling-parameters';
export const TIMEZONE_URL = 'http://hl7.org/fhir/StructureDefinition/timezone';
/** A literal reference, assignable to any typed Reference. */
export type Ref = { reference: string };

/** The reminder Task code the issues specify (a literal here, so tests do not take it from the bot). */
export const REMINDER_CODE = { system: 'https://medplum.com/task-codes', code: 'respond-to-old-message' };
/** A search for reminder Tasks by that code. */
export const REMINDER_SEARCH = `code=${REMINDER_CODE.system}|${REMINDER_CODE.code}`;

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
    name: [{ given: ['Pat'], family: 'PHI-PRACTITIONER-NAME' }],
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
  return server.seed<Patient>({ resourceType: 'Patient', name: [{ given: ['Pat'], family: 'PHI-PATIENT-NAME' }] });
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
    topic: { text: 'PHI-THREAD-TOPIC' },
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
    payload: [{ contentString: 'PHI-MESSAGE-TEXT' }],
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

/**
 * Seeds a message in a thread at a given time (`sent` and `meta.lastUpdated`).
 * @param server - The server.
 * @param thread - The header.
 * @param sender - Who wrote it.
 * @param sent - ISO time.
 * @param fields - Extra or overriding fields (e.g. a later `meta.lastUpdated` for a read receipt).
 * @returns The message.
 */
export async function seedMessage(
  server: ServerMock,
  thread: Communication,
  sender: Ref,
  sent: string,
  fields: Partial<Communication> = {}
): Promise<Communication & { id: string }> {
  return server.seed<Communication>({ ...message(thread, sender), sent, meta: { lastUpdated: sent }, ...fields });
}

/** What a seeded clinic should produce on a stale-thread run. */
export interface ClinicExpectations {
  threads: number;
  /** Threads that are stale (patient wrote last, over 72 h ago). */
  stale: number;
  /** Stale threads without an open reminder: the reminders a run must create. */
  remindersToCreate: number;
  messages: number;
  openTasks: number;
}

const DAY_MS = 86_400_000;

/**
 * Seeds a clinic with a realistic mix of open threads (about 1.35 messages each), by thread index:
 * - i % 10 == 0: stale, the patient wrote last 5 days ago after a care-team message (every other one
 *   read by the care team yesterday: newer `received` and `meta.lastUpdated`); an open response Task
 *   with an owner; every 4th of them already has an open reminder;
 * - 1: the care team wrote last, 5 days ago; 2: an old thread with a patient message yesterday;
 * - 3: a fresh thread (2 hours old) with no messages; 4: a patient message yesterday;
 * - 5-9: an active conversation over the last 2 days (one or two messages).
 * Times are jittered by the index in milliseconds, so no two resources share `meta.lastUpdated`.
 * @param server - The server.
 * @param now - The time the run will happen.
 * @param threads - How many threads.
 * @param onProgress - Called every 1000 threads.
 * @returns What a run should find.
 */
export async function seedClinic(
  server: ServerMock,
  now: number,
  threads: number,
  onProgress?: (done: number) => void
): Promise<ClinicExpectations> {
  const patient = ref(await seedPatient(server));
  const provider = ref(await seedPractitioner(server));
  const at = (msAgo: number, i: number): string => new Date(now - msAgo - i).toISOString();
  const expected: ClinicExpectations = { threads, stale: 0, remindersToCreate: 0, messages: 0, openTasks: 0 };
  for (let i = 0; i < threads; i++) {
    const kind = i % 10;
    const created = kind === 3 ? at(2 * 3_600_000, i) : at(30 * DAY_MS, i);
    // A patient waits from the first message the care team has not answered: only the stale (0) and
    // fresh (3) kinds open with a patient's message; the others' headers have no sender of their own.
    const opener = kind === 0 || kind === 3 ? { sender: patient } : {};
    const thread = await seedThread(server, { subject: patient, ...opener, sent: created, meta: { lastUpdated: created } });
    const say = async (sender: Ref, msAgo: number, fields: Partial<Communication> = {}): Promise<void> => {
      await seedMessage(server, thread, sender, at(msAgo, i), fields);
      expected.messages++;
    };
    if (kind === 0) {
      await say(provider, 8 * DAY_MS);
      const readYesterday = i % 20 === 10 ? { received: at(DAY_MS, i), meta: { lastUpdated: at(DAY_MS, i) } } : {};
      await say(patient, 5 * DAY_MS, readYesterday);
      await seedTask(server, thread, { owner: provider, status: 'in-progress', meta: { lastUpdated: at(8 * DAY_MS, i) } });
      expected.openTasks++;
      expected.stale++;
      if (i % 40 === 0) {
        await seedTask(server, thread, {
          status: 'requested',
          priority: 'urgent',
          code: { coding: [REMINDER_CODE] },
          authoredOn: at(3_600_000, i),
          meta: { lastUpdated: at(3_600_000, i) },
        });
        expected.openTasks++;
      } else {
        expected.remindersToCreate++;
      }
    } else if (kind === 1) {
      await say(patient, 6 * DAY_MS);
      await say(provider, 5 * DAY_MS);
    } else if (kind === 2 || kind === 4) {
      await say(patient, DAY_MS);
    } else if (kind >= 5) {
      await say(patient, 2 * DAY_MS);
      if (kind % 2 === 1) {
        await say(provider, DAY_MS);
      }
    }
    if ((i + 1) % 1000 === 0) {
      onProgress?.(i + 1);
    }
  }
  return expected;
}

/** Marks text that must never reach a log: every name, message text and secret value in the fixtures carries it. */
export const PHI_MARKER = 'PHI-';

/**
 * Builds a bot event the way the server passes it: secrets as ProjectSettings by name. Every event
 * also carries an unrelated secret whose value must never be logged.
 * @param input - `event.input`.
 * @param secrets - Secret names to string values.
 * @returns The event.
 */
export function botEvent(input: unknown, secrets: Record<string, string> = {}): BotEvent<Resource> {
  const settings: Record<string, ProjectSetting> = { PARTNER_API_KEY: { name: 'PARTNER_API_KEY', valueString: `${PHI_MARKER}SECRET-VALUE` } };
  for (const [name, valueString] of Object.entries(secrets)) {
    settings[name] = { name, valueString };
  }
  return { bot: { reference: 'Bot/test' }, contentType: 'application/fhir+json', input: input as Resource, secrets: settings };
}

/** A thread whose response Task is owned by a provider with a Schedule: the OOO bot's world. */
export interface OwnedThread {
  owner: Practitioner & { id: string };
  schedule: Schedule & { id: string };
  patient: Ref;
  thread: Communication & { id: string };
  task: Task & { id: string };
}

/**
 * Seeds a provider (New York time zone) with a Schedule, a patient, a thread addressed to both, and
 * a response Task owned by the provider.
 * @param server - The server.
 * @param options - `away`: a vacation block from a week before now to a week after; `schedule`:
 *   Schedule options; `recipients`: the header's recipients (default patient and owner); `task`:
 *   fields of the Task.
 * @returns What was seeded.
 */
export async function seedOwnedThread(
  server: ServerMock,
  options: { away?: boolean; schedule?: ScheduleOptions; recipients?: Ref[]; task?: Partial<Task> } = {}
): Promise<OwnedThread> {
  const owner = await seedPractitioner(server);
  const schedule = await seedSchedule(server, [ref(owner)], options.schedule);
  if (options.away) {
    const week = 7 * DAY_MS;
    await seedBlock(server, schedule, new Date(Date.now() - week).toISOString(), new Date(Date.now() + week).toISOString());
  }
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient, recipient: options.recipients ?? [patient, ref(owner)] });
  const task = await seedTask(server, thread, { owner: ref(owner), ...options.task });
  return { owner, schedule, patient, thread, task };
}
