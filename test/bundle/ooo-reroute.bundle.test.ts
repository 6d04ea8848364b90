// The built dist/ooo-reroute.js, run as the server runs it (no Buffer, no process, no setTimeout).
import type { Task } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import {
  botEvent,
  message,
  ref,
  seedBlock,
  seedPatient,
  seedPractitioner,
  seedSchedule,
  seedTask,
  seedThread,
} from '../harness/fixtures';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { createServerMock } from '../harness/server-mock';
import { BotConsole, runBundledBot, runLambdaStyle } from './vm-sandbox';

useFixedTimeAndQuietConsole('2026-11-27T15:17:00.000Z');

test.each(['vmcontext', 'awslambda'] as const)('%s: the bundle reroutes a Task of an owner on vacation and keeps one of an owner on duty', async (runtime) => {
  const server = createServerMock();
  const patient = ref(await seedPatient(server));
  const away = await seedPractitioner(server);
  await seedBlock(server, await seedSchedule(server, [ref(away)]), '2026-11-20T00:00:00Z', '2026-12-05T00:00:00Z');
  const present = await seedPractitioner(server);
  await seedSchedule(server, [ref(present)]);
  const thread = await seedThread(server, { subject: patient });
  const awayTask = await seedTask(server, thread, { owner: ref(away) });
  const presentTask = await seedTask(server, thread, { owner: ref(present) });

  const input = { ...message(thread, patient), id: 'm1' };
  // A malformed secret takes the warning path: the server's bot console has `log` only.
  const botConsole = new BotConsole();
  const event = botEvent(input, { BOT_TIMEOUT_SECONDS: 'soon' });
  const summary = runtime === 'vmcontext' ? await runBundledBot('dist/ooo-reroute.js', server.medplum, event, botConsole) : await runLambdaStyle('dist/ooo-reroute.js', server.medplum, event);
  if (runtime === 'vmcontext') {
    expect(botConsole.messages.some((m) => m.includes('WARN secret BOT_TIMEOUT_SECONDS'))).toBe(true);
  }

  expect(summary).toMatchObject({ outcome: 'done', rerouted: 1, kept: 1 });
  const rerouted = await server.read<Task>('Task', awayTask.id);
  expect(rerouted.owner).toBeUndefined();
  expect(rerouted.note).toHaveLength(1);
  expect((await server.read<Task>('Task', presentTask.id)).owner).toEqual(ref(present));
});

test('a bundle without the exports footer would fail in this sandbox', async () => {
  const { writeFileSync, readFileSync, mkdtempSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/bundle-');
  const withoutFooter = readFileSync('dist/ooo-reroute.js', 'utf8').replace('Object.assign(exports, module.exports);', '');
  writeFileSync(`${dir}/no-footer.js`, withoutFooter);
  const server = createServerMock();
  await expect(
    runBundledBot(`${dir}/no-footer.js`, server.medplum, botEvent({}))
  ).rejects.toThrow('exports.handler is not a function');
});

test.each(['vmcontext', 'awslambda'] as const)('%s: a cron run (input: the Bot) sweeps', async (runtime) => {
  const server = createServerMock();
  const patient = ref(await seedPatient(server));
  const away = await seedPractitioner(server);
  await seedBlock(server, await seedSchedule(server, [ref(away)]), '2026-11-20T00:00:00Z', '2026-12-05T00:00:00Z');
  const thread = await seedThread(server, { subject: patient, recipient: [patient, ref(away)] });
  await server.seed({ ...message(thread, patient), sent: '2026-11-27T15:00:00.000Z' });
  const task = await seedTask(server, thread, { owner: ref(away) });
  const event = botEvent({ resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute' }, { BOT_TIMEOUT_SECONDS: '60' });
  const summary = runtime === 'vmcontext' ? await runBundledBot('dist/ooo-reroute.js', server.medplum, event) : await runLambdaStyle('dist/ooo-reroute.js', server.medplum, event);
  expect(summary).toMatchObject({ mode: 'sweep', rerouted: 1 });
  expect((await server.read<Task>('Task', task.id)).owner).toBeUndefined();
});
