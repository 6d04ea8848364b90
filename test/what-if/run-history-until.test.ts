// A run that started inside the period and was recorded after its end is one of the period's runs.
// Measured on a real server (#30): a reminders run started 08:50:00.175 and its AuditEvent (dated
// when the run ended) was written 08:50:03.695; with --until 08:50:02 the run was not replayed while
// the 108 reminders it made counted as the bots' (agreement 58.4% instead of 100%).
import type { AuditEvent, Bot } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import { readRunHistory } from '../../src/what-if/runs';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { createServerMock, indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000);

test('a reminders run started before --until and recorded after it is replayed', async () => {
  const server = createServerMock();
  const ooo = await server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
  const stale = await server.seed<Bot>({ resourceType: 'Bot', name: 'stale-thread-reminders' });
  const run = (bot: Bot, start: string, recorded: string, log: string): Promise<AuditEvent> =>
    server.seed<AuditEvent>({
      resourceType: 'AuditEvent',
      type: { code: 'execute' },
      recorded,
      period: { start, end: recorded },
      outcome: '0',
      outcomeDesc: log,
      agent: [],
      source: { observer: {} },
      entity: [{ what: { reference: `Bot/${bot.id}` } }],
    } as AuditEvent);
  await run(ooo, '2026-12-06T08:45:00.100Z', '2026-12-06T08:45:01.000Z', '[ooo-reroute] sweep: tasks=3 threads=2 waiting=1 owners=1 rerouted=0');
  await run(stale, '2026-12-06T08:50:00.175Z', '2026-12-06T08:50:03.695Z', '[stale-thread-reminders] threads=4 stale=1 created=1 episodeExists=0 mode=incremental');
  // Started after --until: not the period's.
  await run(stale, '2026-12-06T09:00:00.100Z', '2026-12-06T09:00:02.000Z', '[stale-thread-reminders] threads=4 stale=1 created=0 episodeExists=0 mode=incremental');

  const window = { from: Date.parse('2026-12-06T08:28:00Z'), until: Date.parse('2026-12-06T08:50:02Z') };
  const history = await readRunHistory(server.medplum, new QuotaPacer(server.medplum), window);
  expect(history).toMatchObject({ runs: { sweep: [Date.parse('2026-12-06T08:45:00.100Z')], reminders: [Date.parse('2026-12-06T08:50:00.175Z')] } });
});
