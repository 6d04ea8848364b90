// What the stale bot's tests in this folder share: a clinic, threads, the bot's runs and its marker.
import type { Basic, Communication, Task } from '@medplum/fhirtypes';
import { handler } from '../../src/stale-thread-reminders';
import type { StaleSummary } from '../../src/stale-thread-reminders';
import { botEvent, ref, REMINDER_SEARCH, seedMessage, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock, ServerMockOptions } from '../harness/server-mock';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** The cron's input: the Bot. */
export const CRON = { resourceType: 'Bot', id: 'stale', name: 'stale-thread-reminders' };
/** The marker's identifier and extensions, as literals (the tests pin the format a clinic's data keeps). */
export const MARKER = { system: 'urn:medplum-messaging-bots:stale-thread-reminders', value: 'full-reconcile' };
export const FINISHED_URL = 'urn:medplum-messaging-bots:stale-reconcile-finished';
export const PASS_STARTED_URL = 'urn:medplum-messaging-bots:stale-reconcile-pass-started';

export interface Clinic {
  server: ServerMock;
  patient: Ref;
  nurse: Ref;
}

/**
 * A clinic: a patient and a nurse.
 * @param options - Server options.
 * @returns The clinic.
 */
export async function clinic(options: ServerMockOptions = {}): Promise<Clinic> {
  const server = createServerMock(options);
  return { server, patient: ref(await seedPatient(server)), nurse: ref(await seedPractitioner(server)) };
}

/**
 * Records on the bot's marker that the last full reconcile finished at an instant (as the bot would have).
 * @param c - The clinic.
 * @param finished - ISO instant.
 * @returns The marker.
 */
export async function markReconciled(c: Clinic, finished: string): Promise<Basic> {
  return c.server.seed<Basic>({
    resourceType: 'Basic',
    meta: { tag: [{ system: 'urn:medplum-messaging-bots', code: 'stale-thread-reminders' }] },
    code: { text: 'Stale-thread reminders: progress of the full reconcile' },
    identifier: [MARKER],
    extension: [{ url: FINISHED_URL, valueInstant: finished }],
  });
}

/**
 * The bot's marker, if it made one.
 * @param c - The clinic.
 * @returns The markers found (one at most).
 */
export async function markers(c: Clinic): Promise<Basic[]> {
  return c.server.searchAll<Basic>('Basic', `identifier=${MARKER.system}|${MARKER.value}`);
}

/**
 * A thread opened `opened` ago (a header without sender) where the care team wrote `replied` ago
 * and the patient `waiting` ago.
 * @param c - The clinic.
 * @param at - Instants, ms before `now`.
 * @param at.opened - The header.
 * @param at.replied - The care team's message (none when undefined).
 * @param at.waiting - The patient's message (none when undefined).
 * @param now - The clinic's now.
 * @param fields - Header fields.
 * @returns The header.
 */
export async function thread(
  c: Clinic,
  at: { opened: number; replied?: number; waiting?: number },
  now: number,
  fields: Partial<Communication> = {}
): Promise<Communication & { id: string }> {
  const iso = (ms: number): string => new Date(now - ms).toISOString();
  const header = await seedThread(c.server, { subject: c.patient, sent: iso(at.opened), meta: { lastUpdated: iso(at.opened) }, ...fields });
  if (at.replied !== undefined) {
    await seedMessage(c.server, header, c.nurse, iso(at.replied));
  }
  if (at.waiting !== undefined) {
    await seedMessage(c.server, header, c.patient, iso(at.waiting));
  }
  return header;
}

/**
 * Runs the bot.
 * @param c - The clinic.
 * @param input - `event.input` (the cron's: the Bot).
 * @param secrets - Secrets.
 * @returns The summary.
 */
export async function run(c: Clinic, input: unknown = CRON, secrets: Record<string, string> = {}): Promise<StaleSummary> {
  return handler(c.server.medplum, botEvent(input, { BOT_TIMEOUT_SECONDS: '600', ...secrets }));
}

/**
 * Every reminder.
 * @param c - The clinic.
 * @returns The reminders.
 */
export async function reminders(c: Clinic): Promise<Task[]> {
  return c.server.searchAll<Task>('Task', `${REMINDER_SEARCH}&_count=100000`);
}

/**
 * How many reminders each thread has.
 * @param all - Reminders.
 * @returns Counts by thread reference.
 */
export function perThread(all: Task[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of all) {
    counts.set(t.focus?.reference as string, (counts.get(t.focus?.reference as string) ?? 0) + 1);
  }
  return counts;
}

/**
 * Requests the server refused for quota (whole, or an entry of a batch).
 * @param server - The server.
 * @returns Them.
 */
export function throttled(server: ServerMock): unknown[] {
  return server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429'));
}
