// `npm run sla-report:sample`: the SLA report of a synthetic clinic (six weeks of response Tasks
// and reminders in the test harness), so anyone can see one without a server. Deterministic: the
// same page every time.
import type { Task } from '@medplum/fhirtypes';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { main as exportMain } from '../../src/sla/sla-export';
import { ref, REMINDER_CODE, seedMessage, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { RESPOND, seedHistory } from './sla-fixtures';

/** The end of the sample period. */
export const SAMPLE_NOW = new Date('2026-11-30T00:00:00.000Z');
export const SAMPLE_REPORT = 'reports/sla-report-sample.html';
const H = 3_600_000;

/**
 * A small deterministic random generator (mulberry32).
 * @param seed - Seed.
 * @returns A function giving numbers in [0, 1).
 */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Seeds six weeks of a clinic's messaging: response Tasks of every priority, answered faster or
 * slower (the last weeks better staffed), some rerouted by the out-of-office bot, reminders, some
 * escalated and some still open.
 * @param server - The server.
 */
export async function sampleClinic(server: ServerMock): Promise<void> {
  const next = random(20261130);
  const patient = ref(await seedPatient(server));
  const staff = [ref(await seedPractitioner(server)), ref(await seedPractitioner(server)), ref(await seedPractitioner(server))];
  const end = SAMPLE_NOW.getTime();
  const iso = (t: number): string => new Date(t).toISOString();
  const ooo = (t: number) => ({ authorString: 'ooo-reroute', text: 'Returned to the team pool', time: iso(t) });
  for (let i = 0; i < 150; i++) {
    const wrote = end - 42 * 24 * H + Math.floor(next() * 41 * 24) * H;
    const week = Math.floor((end - wrote) / (7 * 24 * H)); // 0: the last week
    const roll = next();
    const priority: Task['priority'] = roll < 0.65 ? 'routine' : roll < 0.88 ? 'urgent' : roll < 0.97 ? 'asap' : 'stat';
    const typical = { routine: 14, urgent: 3, asap: 0.8, stat: 0.2 }[priority as string] as number;
    // One thread in twenty-five is still waiting at the end of the period.
    const delay = i % 25 === 0 ? Infinity : typical * (0.25 + 2 * next() * next()) * (week > 2 ? 1.5 : 0.8) * H;
    const thread = await seedThread(server, { subject: patient, priority });
    const focus = { reference: `Communication/${thread.id}` };
    const message = await seedMessage(server, thread, patient, iso(wrote));
    const owner = staff[i % 3];
    const answered = wrote + delay < end - H;
    const rerouted = next() < 0.12;
    const step = Math.min(delay, 6 * H);
    const later: [string, Partial<Task>][] = [[iso(wrote + 0.1 * step), { owner, status: 'accepted' }]];
    if (rerouted) {
      later.push([iso(wrote + 0.3 * step), { owner: undefined, status: 'requested', note: [ooo(wrote + 0.3 * step)] }]);
      later.push([iso(wrote + 0.5 * step), { owner: staff[(i + 1) % 3], status: 'accepted', note: [ooo(wrote + 0.3 * step)] }]);
    }
    if (answered) {
      await seedMessage(server, thread, rerouted ? staff[(i + 1) % 3] : owner, iso(wrote + delay));
      later.push([iso(wrote + delay + 60_000), { status: 'completed' }]);
    }
    await seedHistory(
      server,
      {
        code: { coding: [RESPOND] },
        priority,
        focus,
        for: patient,
        authoredOn: iso(wrote + 60_000),
        input: [{ type: { text: 'Patient message' }, valueReference: { reference: `Communication/${message.id}` } }],
      },
      iso(wrote + 60_000),
      later
    );
    // A slow thread also got a reminder, escalated every 8 hours while it stayed unanswered.
    if (delay > 10 * H && wrote + 10 * H < end) {
      const created = wrote + 10 * H;
      const steps: [string, Partial<Task>][] = [];
      for (let k = 1; k <= 2 && created + k * 8 * H < Math.min(end, wrote + delay); k++) {
        steps.push([iso(created + k * 8 * H), { priority: k === 1 ? 'asap' : 'stat' }]);
      }
      if (answered) {
        steps.push([iso(wrote + delay + 120_000), { status: 'completed' }]);
      }
      await seedHistory(server, { code: { coding: [REMINDER_CODE] }, priority: 'urgent', focus, for: patient, authoredOn: iso(created) }, iso(created), steps);
    }
  }
}

/**
 * Seeds the sample clinic and writes its report.
 * @param argv - Extra options for sla-export.
 * @returns The exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const server = createServerMock();
  await sampleClinic(server);
  mkdirSync(dirname(SAMPLE_REPORT), { recursive: true });
  const options = ['--since', '2026-10-19', '--until', '2026-11-30', '--html', SAMPLE_REPORT, '--business-hours', 'test/sla/sample-business-hours.json'];
  return exportMain([...options, '--app-url', 'https://app.medplum.com/', ...argv], {
    medplum: server.medplum,
    now: SAMPLE_NOW,
  });
}
