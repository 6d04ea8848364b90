// The what-if's synthetic clinic: a script of conversations (who wrote in which thread, and when)
// over a few weeks, deterministic from a seed, and the resources it becomes on the test server.
// Tests count from the script by hand; the replay reads the server.
import type { Communication } from '@medplum/fhirtypes';
import { ref, seedBlock, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import type { Ref } from '../harness/fixtures';
import type { ServerMock } from '../harness/server-mock';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** One message of the script. */
export interface ScriptMessage {
  thread: number;
  role: 'patient' | 'care-team';
  /** Which practitioner wrote (care team), 0-based. */
  staff?: number;
  at: number;
}

/** The script of a clinic. */
export interface Script {
  /** First instant of the clinic (nothing is older). */
  start: number;
  end: number;
  threads: { priority: 'routine' | 'urgent'; recipient: number }[];
  messages: ScriptMessage[];
  staff: number;
}

/**
 * A small deterministic random generator (mulberry32).
 * @param seed - Seed.
 * @returns Numbers in [0, 1).
 */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes a clinic's script: each thread a few episodes, a patient writing at any hour of any day
 * (a follow-up now and then), the care team answering after a few hours to a week, or never.
 * @param options - Seed, period, size.
 * @param options.seed - Seed.
 * @param options.start - First instant.
 * @param options.days - Days of conversation.
 * @param options.threads - Threads.
 * @returns The script, messages in time order.
 */
export function writeScript(options: { seed: number; start: number; days: number; threads: number }): Script {
  const next = random(options.seed);
  const end = options.start + options.days * DAY;
  const staff = 3;
  const delays = [1.5, 6, 20, 30, 45, 60, 80, 110, 150, 200, Infinity];
  const script: Script = { start: options.start, end, threads: [], messages: [], staff };
  for (let thread = 0; thread < options.threads; thread++) {
    script.threads.push({ priority: next() < 0.75 ? 'routine' : 'urgent', recipient: thread % staff });
    // Minutes are odd multiples of 7 s, so no two messages of the clinic share an instant.
    let at = options.start + Math.floor(next() * 10 * DAY) + (thread * 2 + 1) * 7_000;
    while (at < end) {
      script.messages.push({ thread, role: 'patient', at });
      const delay = delays[Math.floor(next() * delays.length)] * HOUR + Math.floor(next() * 50) * 60_000;
      if (next() < 0.3 && delay > 12 * HOUR) {
        script.messages.push({ thread, role: 'patient', at: at + Math.floor(Math.min(delay, 90 * HOUR) / 3) });
      }
      const reply = at + delay;
      if (reply >= end) {
        break;
      }
      script.messages.push({ thread, role: 'care-team', staff: next() < 0.8 ? thread % staff : (thread + 1) % staff, at: reply });
      at = reply + Math.floor((1 + next() * 9) * DAY) + Math.floor(next() * 60) * 60_000;
    }
  }
  script.messages.sort((a, b) => a.at - b.at);
  return script;
}

/** What seeding made: references by script index. */
export interface Seeded {
  staff: Ref[];
  patients: Ref[];
  threads: (Communication & { id: string })[];
}

/**
 * Seeds the clinic's people and thread headers (New York practitioners working Monday to Friday,
 * 9 to 5; the second one away for the clinic's third week), and, unless `messages` is false, every
 * message of the script at its time.
 * @param server - The server.
 * @param script - The script.
 * @param messages - Whether to seed the messages now (false: a driver writes them as time goes).
 * @returns The references.
 */
export async function seedScript(server: ServerMock, script: Script, messages = true): Promise<Seeded> {
  const staff: Ref[] = [];
  for (let i = 0; i < script.staff; i++) {
    const practitioner = ref(await seedPractitioner(server));
    const schedule = await seedSchedule(server, [practitioner], { availability: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00:00', hours: 8 }] });
    if (i === 1) {
      await seedBlock(server, schedule, new Date(script.start + 14 * DAY).toISOString(), new Date(script.start + 21 * DAY).toISOString());
    }
    staff.push(practitioner);
  }
  const patients: Ref[] = [];
  const threads: Seeded['threads'] = [];
  for (const t of script.threads) {
    const patient = ref(await seedPatient(server));
    patients.push(patient);
    const opened = new Date(script.start).toISOString();
    threads.push(await seedThread(server, { subject: patient, priority: t.priority, recipient: [patient, staff[t.recipient]], meta: { lastUpdated: opened } }));
  }
  const seeded = { staff, patients, threads };
  if (messages) {
    for (const m of script.messages) {
      await seedScriptMessage(server, seeded, m);
    }
  }
  return seeded;
}

/**
 * Seeds one message of the script.
 * @param server - The server.
 * @param seeded - What seedScript made.
 * @param m - The message.
 * @returns The message.
 */
export function seedScriptMessage(server: ServerMock, seeded: Seeded, m: ScriptMessage): Promise<Communication & { id: string }> {
  const sender = m.role === 'patient' ? seeded.patients[m.thread] : seeded.staff[m.staff ?? 0];
  return seedMessage(server, seeded.threads[m.thread], sender, new Date(m.at).toISOString());
}
