// The built dist/stale-thread-reminders.js, run as the server runs it.
import type { Task } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import { botEvent, REMINDER_SEARCH, seedClinic } from '../harness/fixtures';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { createServerMock } from '../harness/server-mock';
import { runBundledBot } from './vm-sandbox';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');

useFixedTimeAndQuietConsole(NOW);

test('the bundle creates one reminder per stale thread, and none on a second run', async () => {
  const server = createServerMock({ maxPageSize: 20 });
  const expected = await seedClinic(server, NOW, 60);
  const event = botEvent({});

  const first = await runBundledBot('dist/stale-thread-reminders.js', server.medplum, event);
  expect(first).toMatchObject({ threadsRead: 60, stale: expected.stale, created: expected.remindersToCreate, failed: 0 });
  const second = await runBundledBot('dist/stale-thread-reminders.js', server.medplum, event);
  expect(second).toMatchObject({ created: 0, alreadyReminded: expected.stale });
  const reminders = await server.searchAll<Task>('Task', REMINDER_SEARCH);
  expect(reminders).toHaveLength(expected.stale);
});
