import type { AccessPolicy, Bot, ProjectMembership, Subscription } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import config from '../../medplum.config.json';
import { applySetup, emptyProjectState, planSetup, readProjectState } from '../../src/admin/project-setup';
import type { BotConfig } from '../../src/admin/project-setup';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const bots = config.bots as BotConfig[];
const PROJECT = '123'; // MockClient's project

async function setUp(server: ServerMock, configBots = bots): Promise<Record<string, string>> {
  const state = await readProjectState(server.medplum, PROJECT, configBots);
  return (await applySetup(server.medplum, state, configBots, () => undefined)).botIds;
}

const writes = (server: ServerMock): string[] => server.requests.filter((r) => r.method !== 'GET').map((r) => r.key);

describe('npm run setup', () => {
  test('on an empty Project: both Bots with membership and AccessPolicy, the cron, the Subscription, the secrets', async () => {
    const server = createServerMock();
    const ids = await setUp(server);

    const ooo = await server.read<Bot>('Bot', ids['ooo-reroute']);
    const stale = await server.read<Bot>('Bot', ids['stale-thread-reminders']);
    expect(ooo).toMatchObject({ name: 'ooo-reroute', runtimeVersion: 'vmcontext' });
    expect(stale).toMatchObject({ name: 'stale-thread-reminders', runtimeVersion: 'vmcontext', cronString: '0 * * * *', timeout: 60 });

    for (const bot of [ooo, stale]) {
      const [membership] = await server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${bot.id}`);
      const policy = await server.read<AccessPolicy>('AccessPolicy', membership.accessPolicy?.reference?.split('/')[1] as string);
      expect(policy.name).toBe(`${bot.name} bot`);
    }

    const subscriptions = await server.searchAll<Subscription>('Subscription');
    expect(subscriptions).toHaveLength(1);
    expect(subscriptions[0]).toMatchObject({
      status: 'active',
      criteria: 'Communication?part-of:missing=false&status=in-progress',
      channel: { type: 'rest-hook', endpoint: `Bot/${ooo.id}` },
      extension: [{ url: 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction', valueCode: 'create' }],
    });

    const { project } = await server.medplum.get(`admin/projects/${PROJECT}`);
    expect(Object.fromEntries(project.secret.map((s: { name: string; valueString: string }) => [s.name, s.valueString]))).toEqual({
      OOO_WINDOW_MINUTES: '60',
      OOO_COVERAGE: '{}',
      STALE_AFTER_HOURS: '72',
      ESCALATE_AFTER_HOURS: '24',
      BOT_TIMEOUT_SECONDS: '60',
      STALE_THREAD_CRON: '0 * * * *',
    });
  });

  test('a second run writes nothing', async () => {
    const server = createServerMock();
    const ids = await setUp(server);
    const configured = bots.map((b) => ({ ...b, id: ids[b.name] }));
    server.resetCounts();
    const state = await readProjectState(server.medplum, PROJECT, configured);
    expect(planSetup(state, configured)).toEqual([]);
    await applySetup(server.medplum, state, configured, () => undefined);
    expect(writes(server)).toEqual([]);
  });

  test('secrets already set are kept; a changed setting is updated in place', async () => {
    const server = createServerMock();
    await server.medplum.post(`admin/projects/${PROJECT}/secrets`, [
      { name: 'STALE_AFTER_HOURS', valueString: '48' },
      { name: 'STALE_THREAD_CRON', valueString: '*/15 * * * *' },
    ]);
    const ids = await setUp(server);
    const configured = bots.map((b) => ({ ...b, id: ids[b.name] }));
    const { project } = await server.medplum.get(`admin/projects/${PROJECT}`);
    expect(project.secret.find((s: { name: string }) => s.name === 'STALE_AFTER_HOURS').valueString).toBe('48');
    const stale = await server.read<Bot>('Bot', ids['stale-thread-reminders']);
    expect(stale.cronString).toBe('*/15 * * * *');

    // Someone turns the Subscription off and loosens a policy by hand.
    const [subscription] = await server.searchAll<Subscription>('Subscription');
    await server.update({ ...subscription, status: 'off' });
    const [policy] = await server.searchAll<AccessPolicy>('AccessPolicy', 'name=ooo-reroute bot');
    await server.update({ ...policy, resource: [{ resourceType: '*' }] });

    server.resetCounts();
    await setUp(server, configured);
    expect((await server.read<Subscription>('Subscription', subscription.id as string)).status).toBe('active');
    expect((await server.read<AccessPolicy>('AccessPolicy', policy.id as string)).resource?.map((r) => r.resourceType)).not.toContain('*');
    expect(await server.searchAll('Subscription')).toHaveLength(1);
    expect(writes(server).sort()).toEqual(['PUT AccessPolicy/:id', 'PUT Subscription/:id']);
  });

  test('without an id in the config, a Bot of exactly that name is adopted, not duplicated', async () => {
    const server = createServerMock();
    const existing = await server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute' });
    await server.medplum.post(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute-old' });
    const ids = await setUp(server);
    expect(ids['ooo-reroute']).toBe(existing.id);
    expect((await server.searchAll<Bot>('Bot')).map((b) => b.name).sort()).toEqual(['ooo-reroute', 'ooo-reroute-old', 'stale-thread-reminders']);
  });

  test('two Bots of the same name: setup stops rather than guess', async () => {
    const server = createServerMock();
    await server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
    await server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
    await expect(setUp(server)).rejects.toThrow('several Bots are named "ooo-reroute"');
  });

  test('the dry run writes nothing and, without credentials, plans everything for an empty Project', async () => {
    const steps = planSetup(emptyProjectState(), bots);
    expect(steps.map((s) => `${s.action} ${s.bot ?? ''}`.trim())).toEqual([
      'set-secrets',
      'create ooo-reroute',
      'create-bot ooo-reroute',
      'create ooo-reroute',
      'create stale-thread-reminders',
      'create-bot stale-thread-reminders',
    ]);
    const subscription = steps.find((s) => (s.resource as Subscription).resourceType === 'Subscription')?.resource as Subscription;
    expect(subscription.criteria).toBe('Communication?part-of:missing=false&status=in-progress');

    const server = createServerMock();
    const spy = vi.spyOn(server.medplum, 'post');
    planSetup(await readProjectState(server.medplum, PROJECT, bots), bots);
    expect(writes(server)).toEqual([]);
    expect(spy).not.toHaveBeenCalled();
  });
});
