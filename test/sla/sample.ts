// `npm run sla-export:sample`: runs the export command on the SLA test clinic (in the test harness)
// and prints its summary: the sample in the README.
import { main as exportMain } from '../../src/sla/sla-export';
import { createServerMock } from '../harness/server-mock';
import { clinic, NOW } from './sla-fixtures';

/**
 * Seeds the clinic and runs `sla-export` on it.
 * @param argv - Options passed to sla-export.
 * @returns Its exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const server = createServerMock();
  await clinic(server);
  return exportMain(argv.length ? argv : ['--out', '/dev/null'], { medplum: server.medplum, now: NOW });
}
