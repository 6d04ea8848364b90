// Two admins change the Project's secrets at once: both changes survive. The list is written with the
// Project's version (If-Match on the Project, which a Project admin may update); when the other
// change landed in between, the server answers 412 and the command reads again and writes on top.
import { beforeAll, expect, test } from 'vitest';
import { SECRET_WRITE_ATTEMPTS, updateSecrets } from '../../src/admin/project-secrets';
import { indexDefinitions } from '../harness/server-mock';
import type { RecordedRequest } from '../harness/server-mock';
import { admin, PROJECT } from './admin-harness';
import type { Admin } from './admin-harness';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

/** Runs `other` to its end just before the first write of the command started first: the race that lost a change. */
function interleave(a: Admin, other: () => Promise<unknown>): { done: Promise<void> } {
  let fired = false;
  let resolve: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolve = r));
  a.server.beforeRequest = async (request: RecordedRequest) => {
    if (!fired && request.method !== 'GET') {
      fired = true;
      await other();
      resolve();
    }
  };
  return { done };
}

test('two concurrent settings set of different secrets: both survive, and the second says it wrote on top of the first', async () => {
  const a = admin();
  await a.setSecrets({ PARTNER_API_TOKEN: 'keep-me', STALE_AFTER_HOURS: '72' });
  let second = { code: -1, out: '', err: '' };
  const race = interleave(a, async () => {
    second = await a.run('settings', 'set', 'ESCALATE_AFTER_HOURS=12');
  });
  const first = await a.run('settings', 'set', 'STALE_AFTER_HOURS=48');
  await race.done;
  expect(second.code).toBe(0);
  expect(first.code).toBe(0);
  expect(await a.secrets()).toEqual({ PARTNER_API_TOKEN: 'keep-me', STALE_AFTER_HOURS: '48', ESCALATE_AFTER_HOURS: '12' });
  expect(first.out).toContain('STALE_AFTER_HOURS = 48 (was 72)');
  expect(first.out).toContain('2 other secret(s) kept as they were (the secrets changed meanwhile: read again and written on top of that change, 2 tries)');
  const puts = a.server.requests.filter((r) => r.method === 'PUT' && r.path === `Project/${PROJECT}`);
  // In the order sent: the first command's write (answered 412 after the other's), the other's, the first's again.
  expect(puts.map((r) => r.status)).toEqual([412, 200, 200]);
});

test('a setup adding defaults while an admin sets a secret: the admin\'s value is kept, no default overwrites it', async () => {
  const a = admin();
  await a.setSecrets({ PARTNER_API_TOKEN: 'keep-me' });
  const race = interleave(a, () => a.run('settings', 'set', 'STALE_AFTER_HOURS=24', 'RESPONSE_TASKS=on'));
  const setup = await a.run('setup');
  await race.done;
  expect(setup.code).toBe(0);
  expect(await a.secrets()).toMatchObject({ PARTNER_API_TOKEN: 'keep-me', STALE_AFTER_HOURS: '24', RESPONSE_TASKS: 'on', ESCALATE_AFTER_HOURS: '24', BOT_TIMEOUT_SECONDS: '60' });
});

test('where the Project cannot be read through FHIR: the admin endpoints, the change read back and made again when it is not there', async () => {
  const a = admin();
  await a.setSecrets({ A: '1' });
  // A server that refuses FHIR reads of the Project (403) makes the command fall back.
  const original = a.server.medplum.readResource.bind(a.server.medplum);
  a.server.medplum.readResource = (async (type: string, id: string, options?: object) => {
    if (type === 'Project') {
      throw Object.assign(new Error('Forbidden'), { outcome: { resourceType: 'OperationOutcome', id: 'forbidden', issue: [{ severity: 'error', code: 'forbidden' }] } });
    }
    return original(type as never, id, options as never);
  }) as never;
  a.server.resetCounts();
  a.server.beforeRequest = async (request) => {
    // Another writer without a version check overwrites the list once, right after our first write
    // (before our read-back).
    if (request.method === 'GET' && a.server.requests.filter((r) => r.method === 'GET').length === 2) {
      a.server.beforeRequest = undefined;
      await a.setSecrets({ A: '1', B: '2' });
    }
  };
  const result = await updateSecrets(a.server.medplum, PROJECT, (list) => (list.some((s) => s.name === 'C') ? undefined : [...list, { name: 'C', valueString: '3' }]));
  expect(result).toMatchObject({ written: true, guard: 'read-back', attempts: 2 });
  expect(await a.secrets()).toEqual({ A: '1', B: '2', C: '3' });
  expect(SECRET_WRITE_ATTEMPTS).toBeGreaterThan(1);
});
