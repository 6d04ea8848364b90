// A deploy without `npm run setup` after an upgrade (CI runs `npm run deploy` only) leaves the bot
// with the AccessPolicy of the version before: no Basic (the sweep's marker), no Task history. A
// refused read there must not fail the sweep (a failed run is never retried, and every sweep would
// fail: no reroute, repair or lifecycle step at all): the marker counts as none (24 hours back),
// nothing is recorded, and one warning says what to run. Found by a hostile review.
import type { Task } from '@medplum/fhirtypes';
import { expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { OOO_BOT_NAME, REROUTE_RECORD_URL } from '../../src/lib/reroute-plan';
import { MARKER_FORBIDDEN_HINT } from '../../src/realtime/sweep-marker';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedBlock, seedMessage, seedOwnedThread, seedPatient, seedPractitioner, seedSchedule, seedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';

const T0 = Date.parse('2026-10-21T13:00:00.000Z');
const ON = { RESPONSE_TASKS: 'on', BOT_TIMEOUT_SECONDS: '60' };
const CRON = { resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' };
useFixedTimeAndQuietConsole(T0);

const warnings = (): string[] => vi.mocked(console.log).mock.calls.map((args) => args.map(String).join(' ')).filter((l) => l.includes(' WARN '));

test.each([403, 401] as const)('the sweep does its work when the AccessPolicy refuses the marker (%i)', async (status) => {
  const server = createServerMock();
  const drB = ref(await seedPractitioner(server));
  await seedSchedule(server, [drB]);
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient, recipient: [patient, drB] });
  await seedMessage(server, thread, patient, new Date(T0 - 60_000).toISOString()); // its event lost
  server.faults.push({ match: /^(GET|POST) Basic/, status, times: Infinity });

  const summary = (await handler(server.medplum, botEvent(CRON, ON))) as SweepSummary;
  expect(summary).toMatchObject({ opened: 1, failed: 0 });
  expect(await server.searchAll<Task>('Task', `focus=Communication/${thread.id}`)).toHaveLength(1);
  // Said once, with what to run; no marker write attempted (it would be refused too).
  expect(warnings().filter((w) => w.includes(MARKER_FORBIDDEN_HINT))).toHaveLength(1);
  expect(server.requests.filter((r) => r.batchEntries?.some((e) => e.includes('Basic')))).toEqual([]);
});

test('a refused Task history keeps the Task this run, says what to run, and does not fail the sweep', async () => {
  const local = (day: string, hhmm: string): string => `2026-11-${day}T${String(Number(hhmm.slice(0, 2)) + 5).padStart(2, '0')}:${hhmm.slice(3)}:00.000Z`;
  vi.setSystemTime(Date.parse(local('27', '12:00')));
  const server = createServerMock();
  const drA = await seedPractitioner(server);
  const botNote = {
    time: local('20', '10:00'),
    authorString: OOO_BOT_NAME,
    text: 'Returned to the team pool: Dr A is away.',
    extension: [{ url: REROUTE_RECORD_URL, extension: [{ url: 'from', valueReference: ref(drA) }, { url: 'reason', valueCode: 'absent' }] }],
  };
  // The Task changed after the patient wrote: its history tells who changed it.
  const t = await seedOwnedThread(server, { task: { authoredOn: local('19', '09:00'), note: [botNote], meta: { lastUpdated: local('27', '10:00') } } });
  await seedMessage(server, t.thread, t.patient, local('27', '09:00'));
  await seedBlock(server, t.schedule, local('27', '11:00'), local('30', '17:00'));
  server.faults.push({ match: /^GET Task\/[^/]+\/_history/, status: 403, times: Infinity });

  const summary = (await handler(server.medplum, botEvent(CRON, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
  expect(summary).toMatchObject({ rerouted: 0, failed: 0 });
  expect(server.count((r) => r.path.endsWith('/_history'))).toBe(1);
  expect(warnings().filter((w) => w.includes('npm run setup'))).toHaveLength(1);
  expect((await server.read<Task>('Task', t.task.id)).owner).toEqual(t.task.owner);
});
