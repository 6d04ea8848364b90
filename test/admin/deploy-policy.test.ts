// An upgrade whose code uses a right the deployed AccessPolicy lacks (the sweep's marker is a Basic,
// a person's choice is read from a Task's history): CI runs `npm run deploy`, not setup. Deployed,
// that code would fail every run (a failed Subscription run is never retried), so deploy refuses,
// naming what is missing and the command that fixes it, and deploys nothing.
import type { AccessPolicy, Bot, ProjectMembership } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import { main } from '../../src/admin/cli';
import { missingRights } from '../../src/admin/project-status';
import { indexDefinitions } from '../harness/server-mock';
import { admin, deployIo } from './admin-harness';
import type { Admin } from './admin-harness';

beforeAll(() => indexDefinitions(), 60_000);

async function policyOf(a: Admin, bot: string): Promise<AccessPolicy> {
  const [membership] = await a.server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${a.ids()[bot]}`);
  return a.server.read<AccessPolicy>('AccessPolicy', membership.accessPolicy?.reference?.split('/')[1] as string);
}

async function deploy(a: Admin): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  return { code: await main(['deploy'], deployIo(a, out)), out };
}

test("a policy setup made that lacks this version's rights: nothing deployed, 'run npm run setup first'; after setup it deploys", async () => {
  const a = admin();
  await a.run('setup');
  // The policy as an older version made it: no Basic, no Task history.
  const policy = await policyOf(a, 'ooo-reroute');
  await a.server.update<AccessPolicy>({
    ...policy,
    resource: (policy.resource ?? [])
      .filter((r) => r.resourceType !== 'Basic')
      .map((r) => (r.resourceType === 'Task' ? { ...r, interaction: r.interaction?.filter((i) => i !== 'history') } : r)),
  });

  const refused = await deploy(a);
  expect(refused.code).toBe(1);
  expect(refused.out.join('\n')).toContain(`ooo-reroute: AccessPolicy/${policy.id} lacks what this version uses (Task history, Basic search, Basic read, Basic create, Basic update): run \`npm run setup\` first`);
  for (const id of Object.values(a.ids())) {
    expect((await a.server.read<Bot>('Bot', id)).executableCode).toBeUndefined();
  }

  expect((await a.run('setup')).code).toBe(0);
  const deployed = await deploy(a);
  expect(deployed.code).toBe(0);
  expect((await a.server.read<Bot>('Bot', a.ids()['ooo-reroute'])).executableCode).toBeDefined();
});

test('a policy an admin set on the Bot is theirs: deploy says what to grant in it, and changes nothing', async () => {
  const a = admin();
  await a.run('setup');
  const theirs = await a.server.seed<AccessPolicy>({ resourceType: 'AccessPolicy', name: 'clinic bots', resource: [{ resourceType: 'Task' }, { resourceType: 'Communication' }] });
  const [membership] = await a.server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${a.ids()['ooo-reroute']}`);
  await a.server.update<ProjectMembership>({ ...membership, accessPolicy: { reference: `AccessPolicy/${theirs.id}` } });

  const refused = await deploy(a);
  expect(refused.code).toBe(1);
  expect(refused.out.join('\n')).toMatch(new RegExp(`ooo-reroute: AccessPolicy/${theirs.id} lacks what this version uses \\(.*Basic search.*\\): the policy is not one setup made`));
  expect(await a.server.read<AccessPolicy>('AccessPolicy', theirs.id as string)).toEqual(theirs);
});

test('what a policy lacks counts every entry for the type, as the server does, and a readonly entry grants no writes', () => {
  const needed: AccessPolicy = { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Basic', interaction: ['search', 'read', 'create', 'update'] }] };
  const broadened: AccessPolicy = { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Basic', interaction: ['read', 'search'] }, { resourceType: '*' }] };
  expect(missingRights(broadened, needed)).toEqual([]);
  const readonly: AccessPolicy = { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Basic', readonly: true }] };
  expect(missingRights(readonly, needed)).toEqual(['Basic create', 'Basic update']);
  expect(missingRights({ resourceType: 'AccessPolicy', resource: [{ resourceType: 'Patient' }] }, needed)).toEqual(['Basic search', 'Basic read', 'Basic create', 'Basic update']);
});

test('credentials that cannot read memberships: deploy goes on (status reports what it cannot see)', async () => {
  const a = admin();
  await a.run('setup');
  a.server.faults.push({ match: /ProjectMembership/, status: 403, times: 10 });
  const run = await deploy(a);
  expect(run.code).toBe(0);
  expect((await a.server.read<Bot>('Bot', a.ids()['ooo-reroute'])).executableCode).toBeDefined();
});
