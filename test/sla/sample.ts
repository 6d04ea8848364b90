// `npm run sla-export:sample`: runs the export command on the SLA test clinic (in the test harness)
// and prints its summary, counted in wall-clock hours and then in business hours: the README's sample.
import { main as exportMain } from '../../src/sla/sla-export';
import { createServerMock } from '../harness/server-mock';
import { clinic, NOW } from './sla-fixtures';

/**
 * Seeds the clinic and runs `sla-export` on it, twice.
 * @param argv - Options passed to sla-export (instead of the two sample runs).
 * @returns Its exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const server = createServerMock();
  await clinic(server);
  const run = (args: string[]): Promise<number> => exportMain(args, { medplum: server.medplum, now: NOW });
  if (argv.length) {
    return run(argv);
  }
  return (await run(['--out', '/dev/null'])) || run(['--out', '/dev/null', '--business-hours', 'test/sla/sample-business-hours.json']);
}
