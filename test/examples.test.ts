// The README's data model, as examples/*.json, run through both bots: what it promises holds.
import type { Task } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import { handler } from '../src/ooo-reroute';
import type { RerouteSummary } from '../src/ooo-reroute';
import { parseBusinessHours } from '../src/lib/business-hours';
import { parseResponseRules } from '../src/lib/response-rules';
import { useFixedTimeAndQuietConsole } from './harness/bot-test-setup';
import { botEvent } from './harness/fixtures';
import { createServerMock } from './harness/server-mock';
import { createExamples, EXAMPLE_NOW } from './example-data';
import businessHours from '../examples/business-hours.json';
import staleRules from '../examples/stale-rules.json';

useFixedTimeAndQuietConsole(EXAMPLE_NOW + 60_000);

test('a patient writes while Dr Ada is on vacation: her response Task goes to the team pool, with a note in words', async () => {
  const server = createServerMock();
  const made = await createExamples((r) => server.seed(r as never));
  const summary = (await handler(server.medplum, botEvent(made.message))) as RerouteSummary;
  expect(summary).toMatchObject({ outcome: 'done', rerouted: 1 });
  const task = await server.read<Task>('Task', made['response-task'].id);
  expect(task.owner).toBeUndefined();
  expect(task.note?.[0].text).toBe('Returned to the team pool: Dr Ada Able is away (vacation or leave on their schedule).');
});

test('the same data before the vacation: on shift on a Tuesday at 10:04 in New York, the Task stays', async () => {
  const server = createServerMock();
  const made = await createExamples((r) => server.seed(r as never), -7 * 86_400_000); // a week earlier: no vacation yet
  await server.update({ ...made['vacation-slot'], start: '2027-02-01T00:00:00Z', end: '2027-02-08T00:00:00Z' } as never);
  const summary = (await handler(server.medplum, botEvent(made.message))) as RerouteSummary;
  expect(summary.decisions[0]).toMatchObject({ action: 'kept', reason: 'owner available (on-shift)' });
});

test('with RESPONSE_TASKS on and no Task yet, the message opens one in the shape of examples/response-task.json', async () => {
  const server = createServerMock();
  const made = await createExamples((r) => server.seed(r as never));
  await server.update({ ...made['response-task'], status: 'completed' } as never);
  await handler(server.medplum, botEvent(made.message, { RESPONSE_TASKS: 'on' }));
  const [opened] = await server.searchAll<Task>('Task', 'status=requested');
  expect(opened).toMatchObject({
    status: 'requested',
    intent: 'order',
    priority: 'routine',
    code: made['response-task'].resourceType === 'Task' ? (made['response-task'] as Task).code : undefined,
    focus: { reference: `Communication/${made['thread-header'].id}` },
    for: { reference: `Patient/${made.patient.id}` },
  });
});

test('the example secrets check out with the bots\' own validators', () => {
  expect(parseBusinessHours(businessHours)).not.toHaveProperty('error');
  expect(parseResponseRules(staleRules, { escalateAfterHours: 24 })).not.toHaveProperty('error');
});
