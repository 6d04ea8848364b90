import { describe, expect, test } from 'vitest';
import { main } from '../../src/sla/sla-export';
import { percentile, summarize } from '../../src/sla/sla-metrics';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { ref, seedPatient, seedThread } from '../harness/fixtures';
import { at, clinic, NOW, RESPOND, seedHistory } from './sla-fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

async function exportRows(server: ServerMock, args: string[] = []): Promise<{ rows: SlaRow[]; out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const code = await main(args, { medplum: server.medplum, now: NOW, stdout: (t) => (out += t), stderr: (t) => (err += t) });
  const rowsOnStdout = !args.includes('--out') && !args.includes('--help') && out.trim();
  const rows = rowsOnStdout ? out.trim().split('\n').map((l) => JSON.parse(l) as SlaRow) : [];
  return { rows, out, err, code };
}

describe('sla-export', () => {
  test('every column from the history and the thread', async () => {
    const server = createServerMock();
    const ids = await clinic(server);
    const { rows, err, code } = await exportRows(server);
    expect(code).toBe(0);
    const row = (id: string): SlaRow => rows.find((r) => r.id === id) as SlaRow;

    expect(row(ids.met)).toMatchObject({
      code: 'https://medplum.com/task-codes|respond-to-message',
      priority: 'routine',
      status: 'completed',
      authored_on: at(28),
      first_claimed_at: at(27),
      first_reply_at: at(26),
      completed_at: at(24),
      hours_to_claim: 1,
      hours_to_first_reply: 2,
      hours_to_complete: 4,
      reroute_count: 0,
      escalation_count: 0,
      target_firstReply_hours: 24,
      target_firstReply_status: 'met',
      target_firstReply_elapsed_hours: 2,
    });
    expect(row(ids.met).patient_id).toMatch(/^Patient\//);
    expect(row(ids.breached)).toMatchObject({
      first_claimed_at: null,
      first_reply_at: null,
      hours_to_claim: null,
      target_firstReply_hours: 4,
      target_firstReply_status: 'breached',
      target_firstReply_elapsed_hours: 10,
    });
    expect(row(ids.rerouted)).toMatchObject({ reroute_count: 2, first_claimed_at: at(19), hours_to_claim: 1 });
    expect(row(ids.noReply)).toMatchObject({
      status: 'completed',
      first_reply_at: null,
      hours_to_complete: 3,
      target_firstReply_status: 'open',
      target_firstReply_elapsed_hours: 5,
    });
    expect(row(ids.reminder)).toMatchObject({
      code: 'https://medplum.com/task-codes|respond-to-old-message',
      priority: 'stat',
      escalation_count: 2,
      first_reply_at: null,
      target_firstReply_status: 'breached',
    });
    expect(err).toContain('[##############################] 5/5 Tasks');
    expect(err).toContain('SLA summary (5 Tasks)');
    // Histories come in batches: 5 Tasks, one history request.
    expect(server.countByKey()['POST batch']).toBe(1);
  });

  test('reads past one page, and --since/--until select by authoredOn', async () => {
    const server = createServerMock({ maxPageSize: 20 });
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient });
    for (let i = 0; i < 45; i++) {
      await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), []);
    }
    expect((await exportRows(server)).rows).toHaveLength(45);
    const { rows } = await exportRows(server, ['--since', at(10.5), '--until', at(0.5)]);
    expect(rows).toHaveLength(10);
  });

  test('the summary: per priority, percentiles, breach rate, reroutes', async () => {
    const server = createServerMock();
    await clinic(server);
    const { rows } = await exportRows(server);
    const routine = summarize(rows).find((s) => s.priority === 'routine');
    expect(routine).toEqual({
      priority: 'routine',
      count: 3,
      claim: { p50: 1, p90: 1 },
      firstReply: { p50: 2, p90: 2 },
      complete: { p50: 3, p90: 4 },
      breachRate: 0,
      reroutes: 2,
    });
    expect(percentile([5, 1, 9, 3, 7, 2, 8, 4, 10, 6], 50)).toBe(5);
    expect(percentile([5, 1, 9, 3, 7, 2, 8, 4, 10, 6], 90)).toBe(9);
    expect(percentile([], 50)).toBeNull();
  });

  test('CSV with a header row; custom targets; --help; bad options', async () => {
    const server = createServerMock();
    await clinic(server);
    const { writeFileSync, mkdtempSync, readFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/sla-');
    writeFileSync(`${dir}/targets.json`, JSON.stringify({ firstReply: { routine: 1 }, complete: { routine: 8 } }));
    const { out, code } = await exportRows(server, ['--format', 'csv', '--targets', `${dir}/targets.json`, '--out', `${dir}/sla.csv`]);
    expect(code).toBe(0);
    expect(out).toContain('5 rows written to');
    const [header, ...lines] = readFileSync(`${dir}/sla.csv`, 'utf8').trim().split('\n');
    expect(header.split(',')).toContain('target_complete_status');
    expect(lines).toHaveLength(5);
    expect(lines.some((l) => l.includes('breached'))).toBe(true);

    expect((await exportRows(server, ['--help'])).out).toContain('--targets FILE');
    const bad = await exportRows(server, ['--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--format must be ndjson or csv');
    expect((await exportRows(server, ['--since', 'yesterday'])).err).toContain('--since is not a date');
  });
});
