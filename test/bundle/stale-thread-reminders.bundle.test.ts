// The built dist/stale-thread-reminders.js, run as the server runs it.
import type { Task } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import { botEvent, REMINDER_SEARCH, seedClinic } from '../harness/fixtures';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { createServerMock } from '../harness/server-mock';
import { runBundledBot, runLambdaStyle } from './vm-sandbox';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');

useFixedTimeAndQuietConsole(NOW);

test.each(['vmcontext', 'awslambda'] as const)('%s: the bundle creates one reminder per stale thread, and none on a second run', async (runtime) => {
  const server = createServerMock({ maxPageSize: 20 });
  const expected = await seedClinic(server, NOW, 60);
  // On a cron run the server passes the Bot itself as input: at 15:00 UTC, made the daily full
  // reconcile for the first run; the second, an ordinary hour's, is incremental.
  const secrets = {
    STALE_RULES: JSON.stringify([{ priority: 'stat', afterHours: 1 }]),
    BUSINESS_HOURS: JSON.stringify({ timeZone: 'America/New_York', hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])) }),
  };
  const cron = { resourceType: 'Bot', id: 'stale', name: 'stale-thread-reminders' };
  const run = (extra: Record<string, string>): Promise<unknown> => {
    const event = botEvent(cron, { ...secrets, ...extra });
    return runtime === 'vmcontext' ? runBundledBot('dist/stale-thread-reminders.js', server.medplum, event) : runLambdaStyle('dist/stale-thread-reminders.js', server.medplum, event);
  };

  const first = await run({ STALE_FULL_RECONCILE_HOUR: '15' });
  expect(first).toMatchObject({ mode: 'full', threadsRead: 60, stale: expected.stale, created: expected.remindersToCreate, failed: 0, clock: 'business' });
  const second = await run({});
  expect(second).toMatchObject({ mode: 'incremental', created: 0, alreadyReminded: expected.stale });
  const reminders = await server.searchAll<Task>('Task', REMINDER_SEARCH);
  expect(reminders).toHaveLength(expected.stale);
});
