// #29 item 11, the smaller ones: setup names a paused Subscription it turns back on as such, and the
// SLA report's headline median and its box plot's median are one number.
import type { Subscription } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import { percentile } from '../../src/sla/sla-metrics';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { boxStats, renderReport } from '../../src/sla/sla-report';
import { indexDefinitions } from '../harness/server-mock';
import { admin } from './admin-harness';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

test('setup --reset-bot-settings on a paused Subscription says it turns it back on, not that its channel differs', async () => {
  const a = admin();
  await a.run('setup');
  const [subscription] = await a.server.searchAll<Subscription>('Subscription');
  await a.server.update({ ...subscription, status: 'off' });
  const { code, out } = await a.run('setup', '--reset-bot-settings');
  expect(code).toBe(0);
  expect(out).toContain(`update-subscription [ooo-reroute]: Subscription/${subscription.id} was off (paused by hand?): turned back on (--reset-bot-settings)`);
  expect(out).not.toContain('differs (channel or interaction filter)');
  expect((await a.server.read<Subscription>('Subscription', subscription.id as string)).status).toBe('active');
});

test('the report\'s headline median and its box plot\'s median are the same number (nearest rank), on a small sample too', async () => {
  const row = (id: string, hours: number): SlaRow =>
    ({
      id,
      code: 'https://medplum.com/task-codes|respond-to-message',
      thread_id: id,
      patient_id: null,
      priority: 'routine',
      status: 'completed',
      authored_on: '2026-11-24T10:00:00.000Z',
      started_at: '2026-11-24T10:00:00.000Z',
      first_claimed_at: null,
      first_reply_at: null,
      first_reply_message_id: null,
      completed_at: null,
      clock: 'wall',
      hours_to_claim: null,
      hours_to_first_reply: hours,
      hours_to_complete: null,
      reroute_count: 0,
      escalation_count: 0,
      target_firstReply_status: 'met',
    }) as SlaRow;
  const hours = [1, 2, 3, 4]; // nearest rank: 2; interpolated: 2.5
  const html = await renderReport({
    rows: hours.map((h, i) => row(`t${i}`, h)),
    until: '2026-11-30T00:00:00.000Z',
    generatedAt: new Date('2026-11-30T00:00:00Z'),
    appUrl: 'https://app.medplum.com/',
    responseCode: 'https://medplum.com/task-codes|respond-to-message',
    reminderCode: 'https://medplum.com/task-codes|respond-to-old-message',
  });
  expect(html).toContain('<div class="value">2.0 h</div><div class="name">Median first reply</div>');
  // The chart's marks say their values (the SVG's ARIA labels): its median is the headline's.
  const chart = html.slice(html.indexOf('id="chart-1"'));
  expect(chart).toMatch(/aria-label="median: 2; priority: routine"/);
  expect(chart).not.toMatch(/median: 2\.5/);
  expect(boxStats(hours)).toEqual({ min: 1, q1: percentile(hours, 25), median: percentile(hours, 50), q3: percentile(hours, 75), max: 4 });
});
