// The checks run after every bot test can fail: each is shown catching what it guards against.
import type { Communication } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import { linesWithPhi, subscriptionLoopWrites } from './bot-test-setup';
import { botEvent, message, PHI_MARKER, ref, seedPatient, seedThread } from './fixtures';
import { createServerMock, takeCreatedServers } from './server-mock';

test('a log line with a name, message text or secret value is caught', () => {
  const event = botEvent({});
  const secret = event.secrets.PARTNER_API_KEY.valueString as string;
  expect(linesWithPhi(['[ooo-reroute] Task/1 to-pool', `thread for ${PHI_MARKER}PATIENT-NAME`, `key=${secret}`])).toEqual([
    `thread for ${PHI_MARKER}PATIENT-NAME`,
    `key=${secret}`,
  ]);
});

test('a bot write that would fire the OOO Subscription again is caught; a header patch is not', async () => {
  const server = createServerMock();
  const patient = ref(await seedPatient(server));
  const thread = await seedThread(server, { subject: patient });
  await server.medplum.patchResource('Communication', thread.id, [{ op: 'add', path: '/recipient', value: [patient] }]);
  expect(await subscriptionLoopWrites(server)).toEqual([]);

  await server.medplum.createResource<Communication>(message(thread, patient));
  expect(await subscriptionLoopWrites(server)).toEqual(['POST Communication: a bot created a Communication']);
  takeCreatedServers();
});
