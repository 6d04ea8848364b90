// The integration test leaves a real Project as it found it (#29 item 9): run here through its own
// main() against the server harness, with stand-ins for setup, deploy and the checks.
// - A refusal (foreign open threads, no --yes) writes nothing: setup and deploy are not run.
// - At the end, what the test made is deleted, and what the bots made because of it: Tasks on its
//   threads it never read (response Tasks), one that lands after the threads are gone, and the stale
//   bot's marker when there was none before. A Task on a thread the test did not make stays, and so
//   does a marker that was there before.
// - Every secret the run changed is as it was: one setup added, one a check turned on; one another
//   admin changed meanwhile is left as they made it.
import type { Basic, Communication, Resource, Task } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import { MARKER_IDENTIFIER } from '../../src/stale/reconcile';
import { admin, PROJECT } from '../admin/admin-harness';
import { indexDefinitions } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { main } from './integration';
import type { CheckContext, IntegrationIo } from './integration';
import { restoredSecrets, withSecret } from './project-secret';

beforeAll(() => indexDefinitions(), 60_000);

const CONFIG = JSON.stringify({ bots: [{ name: 'ooo-reroute', id: 'b1' }, { name: 'stale-thread-reminders', id: 'b2' }] });
const marker = (): Basic => ({ resourceType: 'Basic', identifier: [MARKER_IDENTIFIER], code: { text: 'progress' } });

function io(server: ServerMock, scripts: string[], checks: IntegrationIo['checks'], onSleep?: () => Promise<void>): IntegrationIo {
  return {
    connect: async () => server.medplum,
    runScript: (script) => {
      scripts.push(script);
      return 0;
    },
    readFile: () => CONFIG,
    checks,
    sleep: async () => {
      await onSleep?.();
    },
  };
}

const silenced = async <T>(fn: () => Promise<T>): Promise<T> => {
  const { log, error } = console;
  console.log = (): void => undefined;
  console.error = (): void => undefined;
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
};

test('a refusal changes nothing: with a foreign open thread and no --yes, neither setup nor deploy runs and nothing is written', async () => {
  const a = admin();
  await a.setSecrets({ STALE_AFTER_HOURS: '48' });
  await a.server.seed<Communication>({ resourceType: 'Communication', status: 'in-progress' });
  a.server.resetCounts();
  const scripts: string[] = [];
  let checked = false;
  const code = await silenced(() =>
    main(['--env', 'x'], io(a.server, scripts, async () => {
      checked = true;
    }))
  );
  expect(code).toBe(1);
  expect(scripts).toEqual([]);
  expect(checked).toBe(false);
  expect(a.server.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual([]);
  expect(await a.secrets()).toEqual({ STALE_AFTER_HOURS: '48' });
});

test('with --yes: the Project is left as found, the bots\' Tasks for the test\'s threads and a marker the test caused deleted, the Project\'s own kept', async () => {
  const a = admin();
  const server = a.server;
  await a.setSecrets({ PARTNER_API_TOKEN: 'keep-me', STALE_AFTER_HOURS: '48', OOO_COVERAGE: 'owner' });
  const foreignThread = await server.seed<Communication>({ resourceType: 'Communication', status: 'in-progress' });
  const foreignTask = await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `Communication/${foreignThread.id}` } });
  const before = await a.secrets();
  const scripts: string[] = [];
  let ours: Communication | undefined;
  let late = 0;
  const checks = async ({ medplum, create, check }: CheckContext): Promise<void> => {
    const patient = await create({ resourceType: 'Patient' });
    ours = await create<Communication>({ resourceType: 'Communication', status: 'in-progress', subject: { reference: `Patient/${patient.id}` } });
    await create<Communication>({ resourceType: 'Communication', status: 'in-progress', partOf: [{ reference: `Communication/${ours.id}` }], sender: { reference: `Patient/${patient.id}` } });
    // What the bots make because of it, which the checks never read: a response Task, a reminder for the patient, the marker.
    await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `Communication/${ours.id}` } });
    await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: `Patient/${patient.id}` } });
    await server.seed(marker());
    // A check's setting, and a secret another admin changes meanwhile.
    await withSecret(medplum, 'RESPONSE_TASKS', 'on', async () => {
      expect((await a.secrets()).RESPONSE_TASKS).toBe('on');
    });
    await a.setSecrets({ ...(await a.secrets()), PARTNER_API_TOKEN: 'rotated' });
    check('a check', true);
  };
  // Setup adds a default that was not there.
  const setupIo = io(server, scripts, checks, async () => {
    if (late++ === 0 && ours) {
      await server.seed<Task>({ resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `Communication/${ours.id}` } });
    }
  });
  setupIo.runScript = async (script): Promise<number> => {
    scripts.push(script);
    if (script === 'setup') {
      await server.medplum.post(`admin/projects/${PROJECT}/secrets`, [...Object.entries(before).map(([name, valueString]) => ({ name, valueString })), { name: 'ESCALATE_AFTER_HOURS', valueString: '24' }]);
    }
    return 0;
  };
  const code = await silenced(() => main(['--env', 'x', '--yes'], setupIo));
  expect(scripts).toEqual(['setup', 'deploy']);
  expect(code).toBe(0);
  const left = async (type: Resource['resourceType']): Promise<string[]> => (await server.searchAll(type)).map((r) => r.id as string);
  expect(await left('Task')).toEqual([foreignTask.id]);
  expect(await left('Communication')).toEqual([foreignThread.id]);
  expect(await left('Patient')).toEqual([]);
  expect(await left('Basic')).toEqual([]);
  expect(late).toBeGreaterThan(2); // the late Task was searched for again after it was found
  expect(await a.secrets()).toEqual({ ...before, PARTNER_API_TOKEN: 'rotated' });
});

test('a marker that was there before the test stays', async () => {
  const a = admin();
  const kept = await a.server.seed(marker());
  const code = await silenced(() =>
    main(['--yes'], io(a.server, [], async ({ create }) => {
      await create({ resourceType: 'Patient' });
    }))
  );
  expect(code).toBe(0);
  expect((await a.server.searchAll('Basic')).map((r) => r.id)).toEqual([kept.id]);
});

test('restoring puts back exactly the named secrets: an added one removed, a changed one as it was, the rest as they are now', () => {
  const before = [
    { name: 'A', valueString: '1' },
    { name: 'B', valueString: ' 72' },
  ];
  const now = [
    { name: 'A', valueString: '2' },
    { name: 'C', valueString: 'x' },
    { name: 'D', valueString: 'other admin' },
  ];
  expect(restoredSecrets(now, before, ['A', 'B', 'C'])).toEqual([
    { name: 'D', valueString: 'other admin' },
    { name: 'A', valueString: '1' },
    { name: 'B', valueString: ' 72' },
  ]);
  expect(restoredSecrets(before, before, ['A', 'B'])).toBeUndefined();
});
