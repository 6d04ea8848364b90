// Issue #28, invariant 6 (`throttled`): the sweep's scan of recent messages (the lifecycle's
// look-back) is a search like any other: it is sent only when the quota the last response announced
// (RateLimit) covers it. After a burst of the Bot's other work leaves 10 points, the sweep stops before
// it, refused by nobody, and the next sweep (a fresh minute) does the work. As in the simulation's
// seed 1, 4 days, 16 providers, step 49.
import type { Task } from '@medplum/fhirtypes';
import { expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock, DEFAULT_CALLER } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };

useFixedTimeAndQuietConsole(NOW);

async function sweep(server: ServerMock): Promise<SweepSummary> {
  return (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
}

test('a burst leaves 10 points after the Task scan: the recent-message scan is not sent; the next sweep opens the Task', async () => {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB]);
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
  await seedMessage(server, thread, patient, new Date(NOW - 10 * MINUTE).toISOString()); // its event lost

  // The Bot's other work spends all but 10 points of the minute while the sweep scans its Tasks.
  server.beforeRequest = (request) => {
    if (request.caller === DEFAULT_CALLER && request.key.startsWith('GET Task')) {
      server.beforeRequest = undefined;
      server.quota.begin(DEFAULT_CALLER).charge(server.quota.remaining(DEFAULT_CALLER) - 20 - 10);
    }
  };
  const first = await sweep(server);
  expect(server.requests.filter((r) => r.status === 429).map((r) => r.key)).toEqual([]);
  expect(server.requests.filter((r) => r.caller === DEFAULT_CALLER).map((r) => r.key)).toEqual([expect.stringMatching(/^GET Task/)]);
  expect(first).toMatchObject({ stoppedEarly: true, opened: 0, failed: 0 });

  // The next sweep, 15 minutes later, has its quota: the Task is opened.
  vi.setSystemTime(NOW + 15 * MINUTE);
  expect(await sweep(server)).toMatchObject({ stoppedEarly: false, opened: 1, failed: 0 });
  const tasks = await server.searchAll<Task>('Task', `focus=Communication/${thread.id}`);
  expect(tasks.map((t) => t.status)).toEqual(['requested']);
});
