// The SLA report's HTML, read as text (the browser test opens it in Chromium).
import { describe, expect, test } from 'vitest';
import { appUrlOf, parseOptions } from '../../src/sla/sla-export';
import { renderReport, weekOf } from '../../src/sla/sla-report';
import type { SlaRow } from '../../src/sla/sla-metrics';

const RESPONSE = 'https://medplum.com/task-codes|respond-to-message';
const REMINDER = 'https://medplum.com/task-codes|respond-to-old-message';
const row = (over: Partial<SlaRow>): SlaRow =>
  ({
    id: 't',
    code: RESPONSE,
    thread_id: 'h1',
    patient_id: 'Patient/p',
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
    hours_to_first_reply: 5,
    hours_to_complete: null,
    reroute_count: 0,
    escalation_count: 0,
    target_firstReply_hours: 24,
    target_firstReply_elapsed_hours: 5,
    target_firstReply_status: 'met',
    ...over,
  }) as SlaRow;
const input = (rows: SlaRow[]) => ({ rows, until: '2026-11-30T00:00:00.000Z', generatedAt: new Date('2026-11-30T00:00:00Z'), appUrl: 'https://app.medplum.com/', responseCode: RESPONSE, reminderCode: REMINDER });

describe('the report page', () => {
  test('self-contained: no script, no external URL but the thread links; a CSP that forbids loading anything', async () => {
    const html = await renderReport(input([row({}), row({ id: 't2', thread_id: 'h2', priority: 'urgent', hours_to_first_reply: 7, target_firstReply_status: 'breached', reroute_count: 1 })]));
    expect(html).not.toMatch(/<script|<link|@import|url\(/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect([...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1])).toEqual(['https://app.medplum.com/Communication/h2', 'https://app.medplum.com/Communication/h1']);
    expect(html.match(/<svg /g)?.length).toBe(3); // breach per week, reply times, reroutes; no reminders: no chart
    expect(html).toContain('No data in this period.');
  });

  test('headline figures and per-priority breach rate', async () => {
    const rows = [row({ hours_to_first_reply: 2 }), row({ id: 'b', hours_to_first_reply: 4 }), row({ id: 'c', priority: 'urgent', hours_to_first_reply: 30, target_firstReply_status: 'breached' })];
    const html = await renderReport(input(rows));
    expect(html).toContain('<div class="value">3</div><div class="name">Response Tasks</div>');
    expect(html).toContain('<div class="value">4.0 h</div><div class="name">Median first reply</div>');
    expect(html).toContain('<div class="value">30.0 h</div><div class="name">90th percentile</div>');
    expect(html).toContain('<div class="value">33%</div><div class="name">Breach rate</div>');
    expect(html).toContain('<tr><td>urgent</td><td>1</td><td>100%</td></tr>');
  });

  test('ids and names are escaped; reminders are not counted as response Tasks', async () => {
    const html = await renderReport(input([row({ thread_id: '<b>x</b>' }), row({ id: 'r', code: REMINDER, status: 'requested', authored_on: '2026-11-25T00:00:00.000Z' })]));
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(html).toContain('<div class="value">1</div><div class="name">Response Tasks</div>');
    expect(html).toContain('<tr><td>3 to 7 days</td><td>1</td></tr>');
  });
});

test('weeks start on Monday, UTC; the App of the hosted API is app.medplum.com', () => {
  expect(weekOf('2026-11-29T23:59:00Z')).toBe('2026-11-23');
  expect(weekOf('2026-11-30T00:00:00Z')).toBe('2026-11-30');
  expect(weekOf(null)).toBe('unknown');
  expect(appUrlOf('https://api.medplum.com/')).toBe('https://app.medplum.com/');
  expect(appUrlOf('https://medplum.clinic.example:8103/')).toBe('https://medplum.clinic.example:8103/');
});

test('--html and --app-url are checked before any request', () => {
  const now = new Date('2026-11-30T00:00:00Z');
  expect(parseOptions(['--html', '/nonexistent-dir/x.html'], now)).toMatchObject({ error: expect.stringContaining('--html /nonexistent-dir/x.html') });
  expect(parseOptions(['--html', 'r.html', '--app-url', 'app.medplum.com'], now)).toEqual({ error: '--app-url must be an http(s) URL' });
  expect(parseOptions(['--html', 'r.html'], now)).toMatchObject({ options: { html: 'r.html' } });
});
