// `npm run what-if:sample`: the what-if on the synthetic clinic, offline. Four weeks of conversations
// with the real bots running on the test server (the reminders every hour, the response-Task
// lifecycle and the out-of-office reroute on each message and every hour), then `what-if` proposing
// a shorter threshold and opening hours that close weekends. The clinic comes from a fixed seed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { main as whatIf } from '../../src/what-if/cli';
import { createServerMock } from '../harness/server-mock';
import { runBots } from './bots-ran';
import { DAY, seedScript, writeScript } from './clinic';
import { installClock } from './fake-clock';

export const SAMPLE_PAGE = 'reports/what-if-sample.html';
export const SAMPLE_PROPOSED = 'reports/what-if-sample-proposed.json';
const FROM = Date.parse('2026-10-05T00:00:00Z');
const SINCE = FROM + 7 * DAY;
const UNTIL = SINCE + 21 * DAY;

/**
 * Makes the sample clinic's history and runs the what-if on it.
 * @param argv - Extra options for what-if (e.g. --format csv).
 * @returns The exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const script = writeScript({ seed: 30, start: FROM, days: 28, threads: 24 });
  const server = createServerMock();
  const seeded = await seedScript(server, script, false);
  const secrets = {
    STALE_AFTER_HOURS: '72',
    ESCALATE_AFTER_HOURS: '24',
    RESPONSE_TASKS: 'on',
    OOO_COVERAGE: JSON.stringify({ [seeded.staff[1].reference]: seeded.staff[2].reference }),
  };
  await server.medplum.post('admin/projects/123/secrets', Object.entries(secrets).map(([name, valueString]) => ({ name, valueString })));
  const clock = installClock(FROM);
  try {
    await runBots(server, script, seeded, secrets, UNTIL, clock.set);
  } finally {
    clock.restore();
  }
  mkdirSync(dirname(SAMPLE_PAGE), { recursive: true });
  const hours = JSON.parse(readFileSync('examples/business-hours.json', 'utf8')) as unknown;
  writeFileSync(SAMPLE_PROPOSED, `${JSON.stringify({ STALE_AFTER_HOURS: '36', BUSINESS_HOURS: hours }, null, 2)}\n`);
  const iso = (t: number): string => new Date(t).toISOString().slice(0, 10);
  return whatIf(['--since', iso(SINCE), '--until', iso(UNTIL), '--proposed', SAMPLE_PROPOSED, '--warmup-days', '7', '--out', SAMPLE_PAGE, ...argv], {
    medplum: server.medplum,
    now: new Date(UNTIL),
  });
}
