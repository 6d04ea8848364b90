// `npm run status` tells what happened and what is wrong with the data, in lines that fit 100 columns.
import type { Bot, Subscription } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { backlogProblem, describeRun } from '../../src/admin/run-history';
import { seedPatient, seedPractitioner, seedSchedule, seedTask, seedThread, ref } from '../harness/fixtures';
import { admin } from './admin-harness';
import type { Admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

async function deployedProject(): Promise<Admin> {
  const a = admin();
  await a.run('setup');
  for (const id of Object.values(a.ids())) {
    await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
  }
  return a;
}

async function run(a: Admin, bot: string, recorded: string, outcomeDesc: string, outcome = '0'): Promise<void> {
  await a.server.seed({
    resourceType: 'AuditEvent',
    type: { code: 'execute' },
    recorded,
    outcome,
    outcomeDesc,
    agent: [{ requestor: false }],
    source: { observer: { reference: 'Bot/x' } },
    entity: [{ what: { reference: `Bot/${a.ids()[bot]}` } }],
  } as never);
}

const SWEEP = (deferred: number) =>
  `[ooo-reroute] sweep: tasks=40 threads=12 waiting=5 owners=4 unavailable=2 rerouted=2 repaired=0 kept=3 keptOnDuty=1 conflicts=0 failed=0 deferred={"quota":${deferred},"deadline":0}`;

describe('what the bots did', () => {
  test('each run in a few words; every line within 100 columns; the whole log under --verbose', async () => {
    const a = await deployedProject();
    await run(a, 'ooo-reroute', '2026-11-27T10:00:00.000Z', SWEEP(0));
    await run(a, 'ooo-reroute', '2026-11-27T10:01:00.000Z', '[ooo-reroute] Task/t1 owner=Practitioner/p to-pool: absent now\n[ooo-reroute] Communication/h Communication/m: examined=1 rerouted=1 kept=0 repaired=0 opened=0 existed=0 completed=0 cancelled=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}');
    await run(a, 'ooo-reroute', '2026-11-27T10:02:00.000Z', '[ooo-reroute] ignored Communication/m2: sender is Practitioner (care-team), not the patient side');
    await run(a, 'stale-thread-reminders', '2026-11-27T10:00:00.000Z', '[stale-thread-reminders] threads=500 stale=12 created=3 episodeExists=0 alreadyReminded=9 escalated=2 closed=1 cancelled=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}');
    const { code, out } = await a.run('status');
    expect(code).toBe(0);
    expect(out).toContain('10:02  ok  ignored: a message that triggers nothing');
    expect(out).toContain('10:01  ok  event: rerouted 1');
    expect(out).toContain('10:00  ok  sweep: rerouted 2, kept 3, on duty 1');
    expect(out).toContain('10:00  ok  stale: reminders created 3, escalated 2, closed 1');
    expect(out.split('\n').every((l) => l.length <= 100)).toBe(true);
    const verbose = await a.run('status', '--verbose');
    expect(verbose.out).toContain('      [ooo-reroute] Task/t1 owner=Practitioner/p to-pool: absent now');
    expect(verbose.out).toContain(`Bot/${a.ids()['ooo-reroute']}`);
  });

  test('a sweep that left work in each of its last three runs is flagged; one that caught up is not', async () => {
    vi.setSystemTime(new Date('2026-11-27T09:50:00.000Z'));
    const a = await deployedProject();
    for (const [minute, deferred] of [[0, 5], [15, 3], [30, 2]]) {
      await run(a, 'ooo-reroute', `2026-11-27T10:${String(minute).padStart(2, '0')}:00.000Z`, SWEEP(deferred));
    }
    vi.setSystemTime(new Date('2026-11-27T10:40:00.000Z'));
    const flagged = await a.run('status');
    expect(flagged.code).toBe(1);
    expect(flagged.out.replace(/\n {2}(?! )/g, ' ')).toContain('ooo-reroute: its last 3 sweeps each left work for later (2 deferred; 3 deferred; 5 deferred)');
    await run(a, 'ooo-reroute', '2026-11-27T10:45:00.000Z', SWEEP(0));
    vi.setSystemTime(new Date('2026-11-27T10:55:00.000Z'));
    expect((await a.run('status')).code).toBe(0);
    vi.useRealTimers();
  });

  test('a Subscription the server marked in error is flagged', async () => {
    const a = await deployedProject();
    const [subscription] = await a.server.searchAll<Subscription>('Subscription');
    await a.server.update({ ...subscription, status: 'error', error: 'too many failures' });
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    expect(out.replace(/\n {2}(?! )/g, ' ')).toContain(`is error (too many failures): newer Medplum servers turn a Subscription off after repeated failures`);
  });
});

describe('data and secrets the bots cannot use', () => {
  test('a weekend doctor without a time zone keeps their Task forever: status exits 1, names them, says the fix; --data runs only the checks', async () => {
    const a = await deployedProject();
    const doctor = await seedPractitioner(a.server, null);
    await seedSchedule(a.server, [ref(doctor)], { availability: [{ days: ['sat', 'sun'] }] });
    const patient = ref(await seedPatient(a.server));
    for (let i = 0; i < 2; i++) {
      await seedTask(a.server, await seedThread(a.server, { subject: patient }), { owner: ref(doctor) });
    }
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    const text = out.replace(/\n {2}(?! )/g, ' ');
    expect(text).toContain(`1 owner(s) of 2 open Task(s) whose working hours cannot be judged (no-time-zone): treated as available unless a vacation block covers now. Pat PHI-PRACTITIONER-NAME [Practitioner/${doctor.id}] (2).`);
    expect(text).toContain('Fix: add the time-zone extension (http://hl7.org/fhir/StructureDefinition/timezone');
    const data = await a.run('status', '--data');
    expect(data.code).toBe(1);
    expect(data.out).not.toContain('last runs');
    expect(data.out.replace(/\n {2}(?! )/g, ' ')).toContain(`[Practitioner/${doctor.id}] (2)`);
  });

  test('the data check gives the same answer at 10:00 and at 21:00: a second Schedule without hours is named at both', async () => {
    const a = await deployedProject();
    const doctor = await seedPractitioner(a.server);
    await seedSchedule(a.server, [ref(doctor)]);
    await seedSchedule(a.server, [ref(doctor)], { noParameters: true });
    await seedTask(a.server, await seedThread(a.server, { subject: ref(await seedPatient(a.server)) }), { owner: ref(doctor) });
    const answers: string[] = [];
    for (const hour of ['2026-11-27T15:00:00Z', '2026-11-28T02:00:00Z']) {
      vi.setSystemTime(new Date(hour));
      const { code, out } = await a.run('status', '--data');
      expect(code).toBe(1);
      answers.push(out.replace(/\n {2}(?! )/g, ' ').split('\n').filter((l) => l.includes('cannot be judged')).join('\n'));
    }
    expect(answers[0]).toContain(`(no-working-hours): a Schedule without hours means not working`);
    expect(answers[0]).toContain(`[Practitioner/${doctor.id}] (1)`);
    expect(answers[1]).toBe(answers[0]);
    vi.useRealTimers();
  });

  test("a malformed BUSINESS_HOURS: status exits 1 and says what is wrong and the fix; another integration's secret is never shown", async () => {
    const a = await deployedProject();
    await a.setSecrets({ ...(await a.secrets()), PARTNER_API_TOKEN: 'sk_live_NEVER', BUSINESS_HOURS: '{"timeZone":"America/New_York","hours":{"mon":[["22:00","02:00"]]}}' });
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    const text = out.replace(/\n {2}(?! )/g, ' ');
    expect(text).toContain('- secret BUSINESS_HOURS: ');
    expect(text).toContain('Fix: npm run settings -- set BUSINESS_HOURS=<value>');
    expect(text).toContain('an interval may not cross midnight');
    expect(text).not.toContain('sk_live_NEVER');
    expect(text).not.toContain('PARTNER_API_TOKEN');
  });
});

test('run summaries, read alone', () => {
  const event = (outcomeDesc: string, outcome = '0') => ({ resourceType: 'AuditEvent', recorded: 't', outcome, outcomeDesc }) as never;
  expect(describeRun(event('', '4'))).toMatchObject({ outcome: 'failed', kind: 'unknown', did: '' });
  expect(describeRun(event('[x] sweep stopped early (deadline): 3 thread(s) left\n' + SWEEP(3)))).toMatchObject({ kind: 'sweep', leftWork: 'stopped early (deadline)' });
  const scheduled = (leftWork?: string) => ({ kind: 'sweep' as const, outcome: 'ok', failed: false, trigger: 'schedule' as const, did: '', log: '', leftWork });
  expect(backlogProblem([scheduled('1 deferred'), scheduled('2 deferred')])).toBeUndefined();
  expect(backlogProblem([scheduled('1 deferred'), { ...scheduled(), kind: 'event' }, scheduled('x'), scheduled('y')])).toBeDefined();
});
