// A message's time is `sent`, else `meta.lastUpdated`, in every read: a message stored without
// `sent` is found by the hourly window, judged by its lastUpdated, and answers or is answered by it.
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { REMINDER_CODE, seedMessage, seedTask } from '../harness/fixtures';
import { clinic, CRON, DAY, HOUR, markReconciled, reminders, run, thread } from './helpers';

const NOW = Date.parse('2026-11-27T15:00:00.000Z');
const ago = (ms: number): string => new Date(NOW - ms).toISOString();
const SILENCE_STARTED = 'urn:medplum-messaging-bots:silence-started';
const silenceStart = (task: Task): string | undefined => task.extension?.find((e) => e.url === SILENCE_STARTED)?.valueInstant;

useFixedTimeAndQuietConsole(NOW);

describe.each([
  ['hourly', CRON],
  ['full', { full: true }],
])('messages stored without sent, %s run', (kind, input) => {
  test('a patient message without sent, stored 80 hours ago, is found and dated by its lastUpdated', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await markReconciled(c, ago(HOUR)); // the cron's run is an hourly one
    const header = await thread(c, { opened: 30 * DAY, replied: 10 * DAY }, NOW);
    const unsent = await seedMessage(c.server, header, c.patient, ago(80 * HOUR), { sent: undefined });
    expect(await run(c, input)).toMatchObject({ mode: kind === 'hourly' ? 'incremental' : 'full', created: 1 });
    const [reminder] = await reminders(c);
    expect(silenceStart(reminder)).toBe(ago(80 * HOUR));
    expect(reminder.description).toContain(`Communication/${unsent.id} unanswered for 3d 8h`);
  });

  test('a care-team reply without sent, stored after the reminder\'s silence began, closes it', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await markReconciled(c, ago(HOUR));
    const header = await thread(c, { opened: 30 * DAY, replied: 10 * DAY, waiting: 5 * DAY }, NOW);
    const reminder = await seedTask(c.server, header, {
      code: { coding: [REMINDER_CODE] },
      status: 'requested',
      priority: 'urgent',
      authoredOn: ago(DAY),
      extension: [{ url: SILENCE_STARTED, valueInstant: ago(5 * DAY) }],
    });
    await seedMessage(c.server, header, c.nurse, ago(HOUR), { sent: undefined });
    expect(await run(c, input)).toMatchObject({ closed: 1 });
    expect((await c.server.read<Task>('Task', reminder.id)).status).toBe('completed');
  });

  test('a follow-up without sent does not restart the clock: the first message, with sent, still dates the wait', { timeout: 60_000 }, async () => {
    const c = await clinic();
    await markReconciled(c, ago(HOUR));
    const header = await thread(c, { opened: 30 * DAY, replied: 10 * DAY, waiting: 80 * HOUR }, NOW);
    await seedMessage(c.server, header, c.patient, ago(2 * HOUR), { sent: undefined });
    expect(await run(c, input)).toMatchObject({ created: 1 });
    expect(silenceStart((await reminders(c))[0])).toBe(ago(80 * HOUR));
  });
});

test('a message with an old sent, stored again lately (a read receipt), is dated by its sent: not newly in the window', { timeout: 60_000 }, async () => {
  const c = await clinic();
  await markReconciled(c, ago(HOUR));
  const header = await thread(c, { opened: 30 * DAY, replied: 10 * DAY }, NOW);
  await seedMessage(c.server, header, c.patient, ago(8 * DAY), { meta: { lastUpdated: ago(80 * HOUR) } });
  // Its time (8 days ago) is out of the hourly window: the hourly run does not find it; the reconcile does.
  expect(await run(c)).toMatchObject({ mode: 'incremental', created: 0 });
  expect(await run(c, { full: true })).toMatchObject({ created: 1 });
  expect(silenceStart((await reminders(c))[0])).toBe(ago(8 * DAY));
});
