import type { AccessPolicy, Bot, ProjectMembership, Subscription } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import config from '../../medplum.config.json';
import { applySetup, readProjectState } from '../../src/admin/project-setup';
import type { BotConfig } from '../../src/admin/project-setup';
import { formatStatus, missingRights, readStatus } from '../../src/admin/project-status';
import { createServerMock, indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

test('status: a wired Project shows no problems; what breaks a bot is flagged', async () => {
  const server = createServerMock();
  const bots = config.bots as BotConfig[];
  const { botIds } = await applySetup(server.medplum, await readProjectState(server.medplum, '123', bots), bots, {}, () => undefined);
  const configured = bots.map((b) => ({ ...b, id: botIds[b.name] }));
  for (const id of Object.values(botIds)) {
    await server.update({ ...(await server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
  }
  await server.seed({
    resourceType: 'AuditEvent',
    type: { code: 'execute' },
    recorded: '2026-11-27T10:00:00.000Z',
    outcome: '0',
    outcomeDesc: '[ooo-reroute] sweep: tasks=9 ... deferred={"quota":3,"deadline":1}; the next sweep finishes what is left',
    agent: [{ requestor: false }],
    source: { observer: { reference: 'Bot/x' } },
    entity: [{ what: { reference: `Bot/${botIds['ooo-reroute']}` } }],
  } as never);

  await server.seed({
    resourceType: 'AuditEvent',
    type: { code: 'execute' },
    recorded: '2026-11-27T09:00:00.000Z',
    outcome: '0',
    outcomeDesc: '[stale-thread-reminders] WARN stopped early (quota): the FHIR quota ran out while reading; nothing written',
    agent: [{ requestor: false }],
    source: { observer: { reference: 'Bot/x' } },
    entity: [{ what: { reference: `Bot/${botIds['stale-thread-reminders']}` } }],
  } as never);
  const healthy = await readStatus(server.medplum, configured);
  expect(healthy.bots[1].lastRuns).toMatchObject([{ time: '2026-11-27T09:00:00.000Z', outcome: 'ok', leftWork: 'stopped early (quota)' }]);
  expect(healthy.problems).toEqual([]);
  expect(healthy.bots.map((b) => b.problems)).toEqual([[], []]);
  expect(healthy.bots[0]).toMatchObject({ runtime: 'awslambda', accessPolicy: 'ours', timeout: 60 });
  expect(healthy.bots[0].triggers).toEqual([expect.stringMatching(/^Subscription\/.* active$/), 'cron */15 * * * *']);
  expect(healthy.bots[0].lastRuns).toMatchObject([{ time: '2026-11-27T10:00:00.000Z', outcome: 'ok', kind: 'sweep', leftWork: '4 deferred' }]);
  expect(formatStatus(healthy)).toContain('No problems found.');

  // Someone pauses the Subscription, lowers the timeout, and swaps the OOO bot's policy for one without Slot reads.
  const [subscription] = await server.searchAll<Subscription>('Subscription');
  await server.update({ ...subscription, status: 'off' });
  await server.update({ ...(await server.read<Bot>('Bot', botIds['stale-thread-reminders'])), timeout: 10 });
  const narrow = await server.seed<AccessPolicy>({ resourceType: 'AccessPolicy', name: 'hand-made', resource: [{ resourceType: 'Task' }, { resourceType: 'Communication', interaction: ['read'] }] });
  const [membership] = await server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${botIds['ooo-reroute']}`);
  await server.update({ ...membership, accessPolicy: { reference: `AccessPolicy/${narrow.id}` } });
  const orphan = await server.seed<Bot>({ resourceType: 'Bot', name: 'made-by-plain-post', executableCode: { url: 'Binary/y' } });
  await server.seed({ resourceType: 'Subscription', status: 'active', reason: 'stray', criteria: 'Communication?part-of:missing=false&status=in-progress', channel: { type: 'rest-hook', endpoint: 'Bot/someone-elses' } });
  // A second active Subscription to the stale bot's neighbour: the OOO bot would run twice per message.
  await server.seed({ ...subscription, id: undefined, meta: undefined, status: 'active' });
  await server.seed({ ...subscription, id: undefined, meta: undefined, status: 'active' });

  const broken = await readStatus(server.medplum, [...configured, { name: 'made-by-plain-post', id: orphan.id, source: '', dist: '' }]);
  const text = formatStatus(broken).replace(/\n {2}(?! )/g, ' '); // problem lines wrap at 100 columns
  expect(text).toContain('sends to Bot/someone-elses, which is not one of our Bots');
  expect(text).toContain('ooo-reroute: several active Subscriptions send it the same messages: each message runs it more than once');
  expect(text).toContain('ooo-reroute: its AccessPolicy lacks what the bot uses: Communication search, Communication update, Schedule search');
  expect(text).toContain('stale-thread-reminders: timeout 10 s is below BOT_TIMEOUT_SECONDS 60');
  expect(text).toContain('made-by-plain-post: no ProjectMembership');
  expect(text).toContain('made-by-plain-post: no cronString');
});

test('missingRights: an interaction list absent means all; * covers every type', () => {
  const needed: AccessPolicy = { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Task', interaction: ['search', 'update'] }, { resourceType: 'Slot', interaction: ['read'] }] };
  expect(missingRights({ resourceType: 'AccessPolicy', resource: [{ resourceType: 'Task' }] }, needed)).toEqual(['Slot read']);
  expect(missingRights({ resourceType: 'AccessPolicy', resource: [{ resourceType: '*' }] }, needed)).toEqual([]);
  expect(missingRights({ resourceType: 'AccessPolicy', resource: [{ resourceType: 'Task', interaction: ['search'] }] }, needed)).toEqual(['Task update', 'Slot read']);
});

test('status: a Subscription paused by hand is flagged: new messages are left to the sweep', async () => {
  const server = createServerMock();
  const bots = config.bots as BotConfig[];
  const { botIds } = await applySetup(server.medplum, await readProjectState(server.medplum, '123', bots), bots, {}, () => undefined);
  const [subscription] = await server.searchAll<Subscription>('Subscription');
  await server.update({ ...subscription, status: 'off' });
  const status = await readStatus(server.medplum, bots.map((b) => ({ ...b, id: botIds[b.name] })));
  expect(status.bots[0].problems).toContain('its Subscription is off: new messages are left to the sweep');
});
