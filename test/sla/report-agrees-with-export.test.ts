// The SLA report counts the Tasks the export exports: a clinic's own response Task code (given with
// --codes, or its RESPONSE_TASK_CODE), and the reminders open at the end of the period whenever they
// were authored.
import type { Task } from '@medplum/fhirtypes';
import { mkdtempSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/sla/sla-export';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { readOpenReminders } from '../../src/sla/sla-report';
import { ref, REMINDER_CODE, seedMessage, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import { createServerMock, indexDefinitions } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { at, NOW, seedHistory } from './sla-fixtures';

beforeAll(() => indexDefinitions(), 60_000);

const CUSTOM = { system: 'https://clinic.example/task-codes', code: 'answer-patient' };
const REMINDER = `${REMINDER_CODE.system}|${REMINDER_CODE.code}`;
const quiet = { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined };

async function run(server: ServerMock, args: string[]): Promise<{ code: number; rows: SlaRow[]; html: string; err: string }> {
  const d = mkdtempSync('/tmp/sla-agree-');
  let err = '';
  const code = await main([...args, '--out', `${d}/rows.ndjson`, '--html', `${d}/report.html`], {
    medplum: server.medplum,
    now: NOW,
    stdout: () => undefined,
    stderr: (t) => (err += t),
    progress: quiet,
  });
  const rows = readFileSync(`${d}/rows.ndjson`, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as SlaRow);
  return { code, rows, html: readFileSync(`${d}/report.html`, 'utf8'), err };
}

/** Three response Tasks under the clinic's own code, each answered. */
async function clinicWithOwnCode(server: ServerMock): Promise<void> {
  const patient = ref(await seedPatient(server));
  const doctor = ref(await seedPractitioner(server));
  for (let i = 0; i < 3; i++) {
    const thread = await seedThread(server, { subject: patient });
    await seedMessage(server, thread, patient, at(30 + i));
    await seedMessage(server, thread, doctor, at(28 + i));
    await seedHistory(server, { code: { coding: [CUSTOM] }, focus: ref(thread), for: patient, priority: 'routine', authoredOn: at(30 + i) }, at(30 + i), [[at(27 + i), { status: 'completed' }]]);
  }
}

const tile = (html: string, name: string): string | undefined => new RegExp(`<div class="value">([^<]*)</div><div class="name">${name}</div>`).exec(html)?.[1];

describe('the report and the export count the same Tasks', () => {
  test('--codes with the clinic\'s own response code: the export has its 3 Tasks, and so does the report', async () => {
    const server = createServerMock();
    await clinicWithOwnCode(server);
    const { code, rows, html } = await run(server, ['--codes', `${CUSTOM.system}|${CUSTOM.code},${REMINDER}`]);
    expect(code).toBe(0);
    expect(rows.filter((r) => r.code === `${CUSTOM.system}|${CUSTOM.code}`)).toHaveLength(3);
    expect(tile(html, 'Response Tasks')).toBe('3');
    expect(tile(html, 'Median first reply')).toBe('2.0 h');
  });

  test('without --codes, the clinic\'s RESPONSE_TASK_CODE (read from the Project\'s secrets) is exported and reported', async () => {
    const server = createServerMock();
    await server.medplum.post('admin/projects/123/secrets', [{ name: 'RESPONSE_TASK_CODE', valueString: `${CUSTOM.system}|${CUSTOM.code}` }]);
    await clinicWithOwnCode(server);
    const { rows, html, err } = await run(server, []);
    expect(err).toContain(`RESPONSE_TASK_CODE ${CUSTOM.system}|${CUSTOM.code} exported too`);
    expect(rows).toHaveLength(3);
    expect(tile(html, 'Response Tasks')).toBe('3');
  });

  test('a reminder open since before --since is in "open reminders" at the end of the period; one closed before the end is not; one closed after it is', async () => {
    const server = createServerMock();
    const reminder = (authoredHoursAgo: number, later: [string, Partial<Task>][] = []) =>
      seedHistory(server, { code: { coding: [REMINDER_CODE] }, priority: 'routine', authoredOn: at(authoredHoursAgo) }, at(authoredHoursAgo), later);
    await reminder(20 * 24); // open for 20 days, authored long before --since
    await reminder(12 * 24, [[at(5 * 24), { status: 'completed' }]]); // closed before the end: not open then
    await reminder(10 * 24, [[at(24), { status: 'completed' }]]); // closed after the end (2 days ago): open then
    await reminder(24); // authored after the end: not yet there
    const since = at(9 * 24);
    const until = at(2 * 24);
    const { rows, html } = await run(server, ['--since', since, '--until', until]);
    expect(rows).toHaveLength(0); // no Task authored in the period
    expect(html).toContain('<tr><td>over 7 days</td><td>2</td></tr>');
    expect(html).toContain('<tr><td>under 1 day</td><td>0</td></tr>');
    const open = await readOpenReminders(server.medplum, REMINDER, until);
    expect(open).toHaveLength(2);
  });
});
