// Issue 11's scenario on the harness: 300 patient messages within one minute, 250 of them in threads
// whose owner is away, under the server's default quota (50,000 points a minute for the Bot). The
// event path runs out of quota part way; no run is retried; the next sweep must leave every away
// Task rerouted, none half-done, none rerouted twice.
import type { Communication, Practitioner, Task } from '@medplum/fhirtypes';
import { expect, test, vi } from 'vitest';
import { handler } from '../src/ooo-reroute';
import type { RerouteSummary, SweepSummary } from '../src/ooo-reroute';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent, ref, seedBlock, seedMessage, seedPatient, seedPractitioner, seedSchedule, seedTask, seedThread } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';

const NOW = Date.parse('2026-11-27T15:17:00.000Z'); // Friday, 10:17 in New York
const MINUTE = 60_000;
useFixedTimeAndQuietConsole(NOW);

test('300 messages in a minute, 250 to away owners: after the next sweep every away Task is rerouted once, none half-done', { timeout: 120_000 }, async () => {
  const server = createServerMock(); // the server's default quota
  const patient = ref(await seedPatient(server));
  const owners: { owner: Practitioner & { id: string }; away: boolean }[] = [];
  for (let i = 0; i < 35; i++) {
    const owner = await seedPractitioner(server);
    const schedule = await seedSchedule(server, [ref(owner)]);
    const away = i < 25;
    if (away) {
      await seedBlock(server, schedule, new Date(NOW - 7 * 24 * 60 * MINUTE).toISOString(), new Date(NOW + 7 * 24 * 60 * MINUTE).toISOString());
    }
    owners.push({ owner, away });
  }
  // 25 away owners × 10 threads, 10 present owners × 5 threads.
  const threads: { thread: Communication & { id: string }; task: Task & { id: string }; message: Communication; away: boolean; owner: string }[] = [];
  for (const [i, { owner, away }] of owners.entries()) {
    for (let j = 0; j < (away ? 10 : 5); j++) {
      const thread = await seedThread(server, { subject: patient, recipient: [patient, ref(owner)] });
      const task = await seedTask(server, thread, { owner: ref(owner), status: j % 3 === 0 ? 'accepted' : 'in-progress' });
      const message = await seedMessage(server, thread, patient, new Date(NOW - (i * 10 + j) * 100).toISOString());
      threads.push({ thread, task, message, away, owner: `Practitioner/${owner.id}` });
    }
  }
  expect(threads.filter((t) => t.away)).toHaveLength(250);
  server.resetCounts();

  // The Subscription fires once per message, many runs at a time; a failed run is never retried.
  const events: (RerouteSummary | Error)[] = [];
  for (let i = 0; i < threads.length; i += 10) {
    events.push(
      ...(await Promise.all(
        threads.slice(i, i + 10).map((t) =>
          handler(server.medplum, botEvent(t.message)).then(
            (s) => s as RerouteSummary,
            (err: Error) => err
          )
        )
      ))
    );
  }
  const deferredByEvents = events.filter((e) => !(e instanceof Error) && e.deferred.quota > 0).length;
  expect(deferredByEvents).toBeGreaterThan(0); // the quota really ran out
  expect(events.filter((e) => e instanceof Error)).toEqual([]); // ...and no run failed for it
  expect(server.points()).toBeGreaterThan(45_000);

  vi.setSystemTime(new Date(NOW + 15 * MINUTE)); // the sweep's cron, every 15 minutes
  const summary = (await handler(server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo' }, { BOT_TIMEOUT_SECONDS: '60' }))) as SweepSummary;
  expect(summary).toMatchObject({ failed: 0, deferred: { quota: 0, deadline: 0 } });
  expect(summary.rerouted + summary.repaired).toBeGreaterThan(0);

  for (const t of threads) {
    const task = await server.read<Task>('Task', t.task.id);
    const header = await server.read<Communication>('Communication', t.thread.id);
    if (t.away) {
      expect(task.owner, `Task/${t.task.id}`).toBeUndefined();
      expect(task.note, `Task/${t.task.id} rerouted once`).toHaveLength(1);
      expect(header.recipient, `header of Task/${t.task.id} not half-done`).toEqual([patient]);
    } else {
      expect(task.meta?.versionId).toBe(t.task.meta?.versionId);
      expect(header.recipient).toEqual([patient, { reference: t.owner }]);
    }
  }
});
