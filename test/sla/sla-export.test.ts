import type { Task } from '@medplum/fhirtypes';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, test, vi } from 'vitest';
import { formatSummary, main, parseIsoDate, parseOptions } from '../../src/sla/sla-export';
import type { Progress } from '../../src/sla/progress';
import { percentile, summarize } from '../../src/sla/sla-metrics';
import type { SlaRow } from '../../src/sla/sla-metrics';
import { ref, seedPatient, seedPractitioner, seedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { at, clinic, NOW, RESPOND, seedHistory } from './sla-fixtures';

interface Run {
  rows: SlaRow[];
  out: string;
  err: string;
  code: number;
  events: string[];
}

/** Runs the export as a user (a caller with its own quota), recording progress and waits. */
async function exportRows(server: ServerMock, args: string[] = [], options: { sleep?: (ms: number) => Promise<void> } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const events: string[] = [];
  const progress: Progress = {
    phase: (name, total) => events.push(`phase ${name} ${total}`),
    tick: (done) => events.push(`tick ${done}`),
    waiting: (seconds) => events.push(`wait ${seconds}`),
    done: () => events.push('done'),
  };
  const code = await main(args, {
    medplum: server.clientAs('user'),
    now: NOW,
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    progress,
    sleep: options.sleep,
  });
  const rowsOnStdout = !args.includes('--out') && !args.includes('--help') && out.trim();
  const rows = rowsOnStdout ? out.trim().split('\n').map((l) => JSON.parse(l) as SlaRow) : [];
  return { rows, out, err, code, events };
}

const dir = (): string => mkdtempSync('/tmp/sla-');

describe('sla-export', () => {
  test('every column from the history and the thread', async () => {
    const server = createServerMock();
    const ids = await clinic(server);
    const { rows, err, code, events } = await exportRows(server);
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
      clock: 'wall',
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
    expect(events).toEqual(['phase Tasks 0', 'tick 5', 'phase histories 5', 'tick 5', 'phase threads 5', 'tick 5', 'done']);
    expect(err).toContain('SLA summary (5 Tasks, wall-clock hours)');
    // Histories come in batches: 5 Tasks, one history request; each costs the user 10 points.
    expect(server.countByKey()['POST batch']).toBe(1);
    expect(server.requests.find((r) => r.key === 'POST batch')).toMatchObject({ caller: 'user', points: 50 });
  });

  test('reads past one page; --since is inclusive and --until exclusive', async () => {
    const server = createServerMock({ maxPageSize: 20 });
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient });
    for (let i = 0; i < 45; i++) {
      await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), []);
    }
    expect((await exportRows(server)).rows).toHaveLength(45);
    const { rows } = await exportRows(server, ['--since', at(10), '--until', at(1)]);
    expect(rows.map((r) => r.authored_on)).toEqual(Array.from({ length: 9 }, (_, i) => at(10 - i)));
  });

  test.each([
    ['this server: a total, no next link', false],
    ['a server with next links and no total', true],
  ])('a Task with more versions than one history page loses none (%s)', async (_name, historyNextLinks) => {
    const server = createServerMock({ historyNextLinks });
    const patient = ref(await seedPatient(server));
    const thread = await seedThread(server, { subject: patient });
    const changes: [string, Partial<Task>][] = Array.from({ length: 149 }, (_, i) => [at(200 - i), { businessStatus: { text: `step ${i}` } }]);
    changes.splice(3, 1, [at(197), { owner: ref(await seedPractitioner(server)) }]); // the first claim is an early version
    await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(201), priority: 'routine' }, at(201), changes);
    const { rows } = await exportRows(server);
    expect(rows[0]).toMatchObject({ first_claimed_at: at(197), hours_to_claim: 4 });
    expect(server.countByKey()['GET Task/:id/_history']).toBe(1);
  });

  test('paces itself by the quota: waits for the reset, says so, and finishes with every row', async () => {
    const server = createServerMock({ quota: { perCaller: 400 } });
    const patient = ref(await seedPatient(server));
    for (let i = 0; i < 60; i++) {
      const thread = await seedThread(server, { subject: patient });
      await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), []);
    }
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW);
    try {
      const sleep = async (ms: number): Promise<void> => {
        vi.setSystemTime(new Date(Date.now() + ms));
      };
      const run = await exportRows(server, [], { sleep });
      expect(run.code).toBe(0);
      expect(run.rows).toHaveLength(60);
      expect(run.events.filter((e) => e.startsWith('wait'))).not.toEqual([]);
      // Nothing was refused: the export waited before spending what was not there.
      expect(server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429'))).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  test('history entries refused inside a batch (another run spent the quota) are asked again after the reset', async () => {
    const server = createServerMock({ quota: { perCaller: 10_000 } });
    const patient = ref(await seedPatient(server));
    for (let i = 0; i < 10; i++) {
      const thread = await seedThread(server, { subject: patient });
      await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), [[at(i + 0.5), { status: 'completed' }]]);
    }
    let spent = false;
    server.beforeRequest = (r) => {
      if (r.key === 'POST batch' && !spent) {
        spent = true;
        server.quota.begin('user').charge(server.quota.remaining('user') - 45); // 4 histories fit, 6 are refused
      }
    };
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(NOW);
    try {
      const run = await exportRows(server, [], { sleep: async (ms) => void vi.setSystemTime(new Date(Date.now() + ms)) });
      expect(run.code).toBe(0);
      expect(run.rows.map((r) => r.completed_at).filter(Boolean)).toHaveLength(10);
      expect(run.events.filter((e) => e.startsWith('wait'))).toHaveLength(1);
      expect(server.requests.filter((r) => r.key === 'POST batch').map((r) => r.entryStatuses?.filter((s) => s === '429').length)).toEqual([6, 0]);
    } finally {
      vi.useRealTimers();
    }
  });

  test('a server it cannot reach: exit 1 and why, and nothing written', async () => {
    let out = '';
    let err = '';
    const d = dir();
    const code = await main(['--out', `${d}/sla.csv`], { env: {}, stdout: (t) => (out += t), stderr: (t) => (err += t), progress: { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined } });
    expect(code).toBe(1);
    expect(err).toBe('sla-export failed: MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET are not set (client credentials of the Project; put them in .env or the environment)\n');
    expect(out).toBe('');
    expect(existsSync(`${d}/sla.csv`)).toBe(false);
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

  test('CSV with a header row, even when empty; custom targets', async () => {
    const server = createServerMock();
    await clinic(server);
    const d = dir();
    writeFileSync(`${d}/targets.json`, JSON.stringify({ firstReply: { routine: 1 }, complete: { routine: 8 } }));
    const { out, code } = await exportRows(server, ['--format', 'csv', '--targets', `${d}/targets.json`, '--out', `${d}/sla.csv`]);
    expect(code).toBe(0);
    expect(out).toContain('5 rows written to');
    const [header, ...lines] = readFileSync(`${d}/sla.csv`, 'utf8').trim().split('\n');
    expect(header.split(',')).toContain('target_complete_status');
    expect(lines).toHaveLength(5);
    expect(lines.some((l) => l.includes('breached'))).toBe(true);

    const empty = await exportRows(server, ['--format', 'csv', '--since', '2020-01-01', '--until', '2020-02-01', '--out', `${d}/empty.csv`]);
    expect(empty.code).toBe(0);
    const emptyCsv = readFileSync(`${d}/empty.csv`, 'utf8');
    expect(emptyCsv.split('\n')).toEqual([expect.stringContaining('id,code,thread_id'), '']);
    expect(emptyCsv).toContain('target_firstReply_status');
  });

  test('--business-hours counts open hours only, and says which clock in a column', async () => {
    const server = createServerMock();
    const ids = await clinic(server);
    const d = dir();
    // NOW is Friday 2026-11-27 12:00Z; open 10:00-12:00 UTC every day.
    const everyDay = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((day) => [day, [['10:00', '12:00']]]));
    writeFileSync(`${d}/hours.json`, JSON.stringify({ timeZone: 'UTC', hours: everyDay }));
    const { rows, err } = await exportRows(server, ['--business-hours', `${d}/hours.json`]);
    const met = rows.find((r) => r.id === ids.met) as SlaRow;
    // Authored 08:00Z Thursday, claimed 09:00Z, replied 10:00Z, completed 12:00Z: nothing open before 10:00.
    expect(met).toMatchObject({ clock: 'business', hours_to_claim: 0, hours_to_first_reply: 0, hours_to_complete: 2, target_firstReply_elapsed_hours: 0 });
    expect(err).toContain('business hours');
  });

  test('--help, and bad options: a clear message and exit 2 before any request', async () => {
    const server = createServerMock();
    const d = dir();
    writeFileSync(`${d}/bad-targets.json`, JSON.stringify({ firstReply: { routine: 'a day' } }));
    writeFileSync(`${d}/unknown-targets.json`, JSON.stringify({ firstAnswer: { routine: 1 } }));
    writeFileSync(`${d}/hours.json`, JSON.stringify({ timeZone: 'UTC', hours: { fri: [['18:00', '02:00']] } }));
    expect((await exportRows(server, ['--help'])).out).toContain('--business-hours FILE');
    const cases: [string[], string][] = [
      [['--format', 'xml'], '--format must be ndjson or csv, not "xml"'],
      [['--since', 'yesterday'], '--since "yesterday" is not an ISO 8601 date'],
      [['--since', '2026-11-01T08:00:00'], 'is not an ISO 8601 date'],
      [['--since', '2026-02-30'], 'is not an ISO 8601 date'],
      [['--since', '2026-11-20', '--until', '2026-11-10'], '--since 2026-11-20 is not before --until 2026-11-10'],
      [['--since', '2026-12-01'], 'is not before --until (now'],
      [['--dryrun'], "Unknown option '--dryrun'"],
      [['--out'], "Option '--out <value>' argument missing"],
      [['extra'], "Unexpected argument 'extra'"],
      [['--targets', `${d}/bad-targets.json`], `--targets ${d}/bad-targets.json: firstReply.routine: "a day" is not a number of hours`],
      [['--targets', `${d}/unknown-targets.json`], 'unknown target "firstAnswer"'],
      [['--targets', `${d}/none.json`], 'no such file'],
      [['--business-hours', `${d}/hours.json`], `--business-hours ${d}/hours.json: hours.fri: 18:00-02:00 ends before it starts`],
      [['--out', '/no/such/folder/sla.csv'], '--out /no/such/folder/sla.csv: folder /no/such/folder does not exist'],
      [['--out', d], 'is a folder'],
      [['--codes', 'respond-to-message'], '--codes must be a comma-separated list of system|code'],
    ];
    for (const [args, message] of cases) {
      const run = await exportRows(server, args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.err, args.join(' ')).toContain(message);
    }
    expect(server.count()).toBe(0);
  });

  test('dates: a date alone is midnight UTC; a date-time needs its offset', () => {
    expect(parseIsoDate('2026-11-01')).toBe('2026-11-01T00:00:00.000Z');
    expect(parseIsoDate('2026-11-01T08:00:00-05:00')).toBe('2026-11-01T13:00:00.000Z');
    expect(parseIsoDate('2026-11-01T08:00Z')).toBe('2026-11-01T08:00:00.000Z');
    expect(parseIsoDate('2026-11-01T08:00:00')).toBeUndefined();
    expect(parseIsoDate('11/01/2026')).toBeUndefined();
  });
});

describe('export details', () => {
  test('the summary table, exactly: hours to two decimals, a dash for none, the breach rate in whole percent', () => {
    const text = formatSummary(
      [
        { priority: 'routine', count: 12, claim: { p50: 1.234, p90: 5 }, firstReply: { p50: null, p90: null }, complete: { p50: 0.5, p90: 30.1 }, breachRate: 0.256, reroutes: 3 },
        { priority: 'stat', count: 1, claim: { p50: null, p90: null }, firstReply: { p50: 0.1, p90: 0.1 }, complete: { p50: null, p90: null }, breachRate: null, reroutes: 0 },
      ],
      13,
      'business'
    );
    expect(text).toBe(
      [
        'SLA summary (13 Tasks, business hours):',
        'priority  tasks  claim p50/p90 h  first reply p50/p90 h  complete p50/p90 h  breach rate  reroutes',
        'routine   12     1.23 / 5.00      - / -                  0.50 / 30.10        26%          3',
        'stat      1      - / -            0.10 / 0.10            - / -               -            0',
      ].join('\n')
    );
    expect(formatSummary([], 0)).toBe('SLA summary (0 Tasks, wall-clock hours):\npriority  tasks  claim p50/p90 h  first reply p50/p90 h  complete p50/p90 h  breach rate  reroutes');
  });

  test('options: codes trimmed, empty items dropped, each exactly system|code; --since must be before --until', () => {
    const options = (argv: string[]) => parseOptions(argv, NOW);
    expect(options(['--codes', 'https://a|x, https://b|y,,'])).toMatchObject({ options: { codes: ['https://a|x', 'https://b|y'] } });
    for (const codes of ['a|b|c', '|x', 'x|', 'a|x,plain', ',']) {
      expect(options(['--codes', codes]), codes).toEqual({ error: '--codes must be a comma-separated list of system|code' });
    }
    expect(options(['--since', '2026-11-10', '--until', '2026-11-10'])).toEqual({ error: '--since 2026-11-10 is not before --until 2026-11-10' });
    expect(options(['--since', '2026-11-10'])).toMatchObject({ options: { since: '2026-11-10T00:00:00.000Z', until: NOW.toISOString(), format: 'ndjson' } });
  });

  test('dates that look right but are not: out-of-range fields, text around them', () => {
    for (const value of ['2026-13-01T08:00Z', '2026-11-01T25:00Z', 'x2026-11-01', '2026-11-01x', 'x2026-11-01T08:00Z', '2026-11-01T08:00Zx']) {
      expect(parseIsoDate(value), value).toBeUndefined();
    }
    expect(parseIsoDate('2026-11-01T08:00:00.5+01:00')).toBe('2026-11-01T07:00:00.500Z');
  });

  test('a targets file that is not JSON names the file and the parse error', () => {
    const d = dir();
    writeFileSync(`${d}/targets.json`, '{firstReply: 24}');
    const parsed = parseOptions(['--targets', `${d}/targets.json`], NOW);
    expect(parsed).toEqual({ error: expect.stringMatching(new RegExp(`^--targets ${d}/targets.json: not JSON \\(.+\\)$`)) });
    expect(parseOptions(['--targets', `${d}/none.json`], NOW)).toEqual({ error: `--targets ${d}/none.json: no such file` });
  });

  test('rows oldest authored first; a message without sent counts at its lastUpdated, sent wins when both', async () => {
    const server = createServerMock();
    const patient = ref(await seedPatient(server));
    const alice = ref(await seedPractitioner(server));
    const threads = [await seedThread(server, { subject: patient }), await seedThread(server, { subject: patient })];
    // The newer Task is stored first.
    await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(threads[0]), authoredOn: at(5) }, at(5), []);
    await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(threads[1]), authoredOn: at(9) }, at(9), []);
    await server.seed({ resourceType: 'Communication', status: 'completed', partOf: [ref(threads[0])], sender: alice, sent: at(4), meta: { lastUpdated: at(1) } });
    await server.seed({ resourceType: 'Communication', status: 'completed', partOf: [ref(threads[1])], sender: alice, meta: { lastUpdated: at(7) } });
    const { rows } = await exportRows(server);
    expect(rows.map((r) => [r.authored_on, r.first_reply_at])).toEqual([
      [at(9), at(7)],
      [at(5), at(4)],
    ]);
  });

  test('requests: one history entry per Task at 10 points, one message search per 100 threads, none for a Task without a thread or focused elsewhere', async () => {
    const server = createServerMock();
    const patient = ref(await seedPatient(server));
    for (let i = 0; i < 101; i++) {
      const thread = await seedThread(server, { subject: patient });
      await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), []);
    }
    await seedHistory(server, { code: { coding: [RESPOND] }, focus: patient, authoredOn: at(200) }, at(200), []);
    await seedHistory(server, { code: { coding: [RESPOND] }, authoredOn: at(201) }, at(201), []);
    server.resetCounts();
    const { rows } = await exportRows(server);
    expect(rows).toHaveLength(103);
    expect(rows[0]).toMatchObject({ thread_id: null, first_reply_at: null });
    const searches = server.requests.filter((r) => r.key === 'GET Communication');
    expect(searches).toHaveLength(2);
    for (const search of searches) {
      const query = new URL(search.url, 'http://x').searchParams;
      expect(query.get('part-of')?.split(',').every((ref) => ref.startsWith('Communication/'))).toBe(true);
      expect(query.get('_elements')).toBe('partOf,sender,sent,status');
    }
    expect(server.points((r) => r.key === 'POST batch')).toBe(103 * 10);
  });
});

test('a Task whose history cannot be read (deleted meanwhile) is exported from the version the search gave', async () => {
  const server = createServerMock();
  const patient = ref(await seedPatient(server));
  const tasks: (Task & { id: string })[] = [];
  for (let i = 0; i < 3; i++) {
    const thread = await seedThread(server, { subject: patient });
    tasks.push(await seedHistory(server, { code: { coding: [RESPOND] }, focus: ref(thread), authoredOn: at(i + 1) }, at(i + 1), [[at(i + 0.5), { status: 'completed' }]]));
  }
  server.beforeRequest = async (r) => {
    if (r.key === 'POST batch') {
      server.beforeRequest = undefined;
      await server.medplum.deleteResource('Task', tasks[1].id);
    }
  };
  const run = await exportRows(server);
  expect(run.code).toBe(0);
  expect(run.out.endsWith('}\n')).toBe(true);
  expect(run.events.at(-1)).toBe('done');
  expect(run.err).toContain(`sla-export: could not read the history of 1 Task(s), exported from their current version: Task/${tasks[1].id}\n`);
  expect(run.rows.map((r) => [r.id, r.completed_at])).toEqual([
    [tasks[2].id, at(2.5)],
    [tasks[1].id, at(1.5)],
    [tasks[0].id, at(0.5)],
  ]);
});
