import type { Bot } from '@medplum/fhirtypes';
import { expect, test } from 'vitest';
import config from '../../medplum.config.json';
import { applySetup, readProjectState } from '../../src/admin/project-setup';
import type { BotConfig } from '../../src/admin/project-setup';
import { formatStatus, readStatus } from '../../src/admin/project-status';
import { createServerMock } from '../harness/server-mock';

test('status: a wired Project shows no problems; a Bot without membership and a foreign Subscription are flagged', async () => {
  const server = createServerMock();
  const bots = config.bots as BotConfig[];
  const { botIds } = await applySetup(server.medplum, await readProjectState(server.medplum, '123', bots), bots, () => undefined);
  const configured = bots.map((b) => ({ ...b, id: botIds[b.name] }));
  for (const id of Object.values(botIds)) {
    await server.update({ ...(await server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
  }
  await server.seed({ resourceType: 'AuditEvent', type: { code: 'execute' }, recorded: '2026-11-27T10:00:00.000Z', outcome: '4', agent: [{ requestor: false }], source: { observer: { reference: 'Bot/x' } }, entity: [{ what: { reference: `Bot/${botIds['ooo-reroute']}` } }] } as never);

  const healthy = await readStatus(server.medplum, configured);
  expect(healthy.problems).toEqual([]);
  expect(healthy.bots.map((b) => b.problems)).toEqual([[], []]);
  expect(healthy.bots[0].lastRuns).toEqual([{ time: '2026-11-27T10:00:00.000Z', outcome: 'failed' }]);
  expect(formatStatus(healthy)).toContain('No problems found.');

  const orphan = await server.seed<Bot>({ resourceType: 'Bot', name: 'made-by-plain-post', executableCode: { url: 'Binary/y' } });
  await server.seed({
    resourceType: 'Subscription',
    status: 'active',
    reason: 'stray',
    criteria: 'Communication?part-of:missing=false&status=in-progress',
    channel: { type: 'rest-hook', endpoint: 'Bot/someone-elses' },
  });
  const broken = await readStatus(server.medplum, [...configured, { name: 'made-by-plain-post', id: orphan.id, source: '', dist: '' }]);
  const text = formatStatus(broken);
  expect(text).toContain('sends to Bot/someone-elses, which is not one of our Bots');
  expect(text).toContain('made-by-plain-post: no ProjectMembership');
});
