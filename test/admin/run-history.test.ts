// `npm run status` judges each bot's runs by kind and over time, in a Project as busy as a real one:
// hundreds of runs for patient messages between two sweeps, an hourly reminders run, a daily full one.
import type { AuditEvent, Bot, Subscription } from '@medplum/fhirtypes';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { checkCron, firesAt, parseCron, previousTicks } from '../../src/lib/cron';
import { assignRuns, describeRun, judgeRuns, ticksToRead } from '../../src/admin/run-history';
import { admin } from './admin-harness';
import type { Admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const T = (hhmm: string, day = '27'): number => Date.parse(`2026-11-${day}T${hhmm}:00.000Z`);
const iso = (ms: number): string => new Date(ms).toISOString();

afterEach(() => {
  vi.useRealTimers();
});

/** A Project set up and deployed at 06:00 (or `at`) on 27 November. */
async function project(at = '06:00'): Promise<Admin> {
  vi.setSystemTime(new Date(T(at)));
  const a = admin();
  await a.run('setup');
  for (const id of Object.values(a.ids())) {
    await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
  }
  return a;
}

const SWEEP = (deferred = 0, stopped = false): string =>
  (stopped ? '[ooo-reroute] WARN sweep stopped early (deadline): 4 thread(s) left; the next sweep starts elsewhere and finishes them\n' : '') +
  `[ooo-reroute] sweep: tasks=40 threads=12 waiting=5 owners=4 unavailable=2 rerouted=2 repaired=0 kept=3 keptOnDuty=1 conflicts=0 failed=0 deferred={"quota":0,"deadline":${deferred}}`;
const EVENT =
  '[ooo-reroute] Communication/h Communication/m: examined=1 rerouted=0 kept=1 repaired=0 opened=0 existed=0 completed=0 cancelled=0 conflicts=0 failed=0 deferred={"quota":0,"deadline":0}';
const HOURLY = (failed = false): string =>
  failed
    ? 'Unhandled error: stale-thread-reminders: 3 write(s) failed; the next run retries them'
    : '[stale-thread-reminders] threads=40 stale=2 created=1 episodeExists=0 alreadyReminded=1 escalated=0 closed=0 cancelled=0 skipped={} ignoredMessages=0 byRule={} clock=wall mode=incremental conflicts=0 failed=0 deferred={"quota":0,"deadline":0}';

/** A run's AuditEvent as the server writes it: a Subscription run names the Subscription and the message. */
async function run(a: Admin, bot: string, start: number, outcomeDesc: string, options: { outcome?: string; message?: string; subscription?: string } = {}): Promise<void> {
  const botRef = `Bot/${a.ids()[bot]}`;
  await a.server.seed<AuditEvent>({
    resourceType: 'AuditEvent',
    type: { system: 'https://medplum.com/CodeSystem/audit-event', code: 'execute' },
    recorded: iso(start + 1500),
    period: { start: iso(start), end: iso(start + 1500) },
    outcome: (options.outcome ?? '0') as AuditEvent['outcome'],
    outcomeDesc,
    agent: [{ requestor: false, who: { reference: botRef } }],
    source: { observer: { reference: botRef } },
    entity: [
      { what: { reference: botRef }, role: { code: '4', display: 'Domain' } },
      ...(options.message ? [{ what: { reference: options.message }, role: { code: '4', display: 'Domain' } }] : []),
      ...(options.subscription ? [{ what: { reference: options.subscription }, role: { code: '9', display: 'Subscriber' } }] : []),
    ],
  });
}

interface History {
  /** Minutes of each sweep tick (from 06:15) and what its run logged; absent = it did not run. */
  sweep?: (at: number) => { log: string; outcome?: string } | undefined;
  hourly?: (at: number) => { log: string; outcome?: string } | undefined;
  /** Outcome of each event run, by its index counted from the newest (0). */
  eventOutcome?: (fromNewest: number) => string;
}

/**
 * A morning of a busy clinic, 06:00 to `until`: a sweep every 15 minutes, a reminders run every hour,
 * a run for a patient message every 40 seconds in between (over 400 of them).
 */
async function morning(a: Admin, until: number, history: History = {}): Promise<{ events: number }> {
  const [subscription] = await a.server.searchAll<Subscription>('Subscription');
  for (let t = T('06:15'); t <= until; t += 15 * 60_000) {
    const sweep = history.sweep ? history.sweep(t) : { log: SWEEP() };
    if (sweep) {
      await run(a, 'ooo-reroute', t + 200, sweep.log, { outcome: sweep.outcome });
    }
  }
  for (let t = T('07:00'); t <= until; t += 60 * 60_000) {
    const hourly = history.hourly ? history.hourly(t) : { log: HOURLY() };
    if (hourly) {
      await run(a, 'stale-thread-reminders', t + 300, hourly.log, { outcome: hourly.outcome });
    }
  }
  const eventTimes: number[] = [];
  for (let t = T('06:01'); t <= until; t += 40_000) {
    eventTimes.push(t);
  }
  for (const [i, t] of eventTimes.entries()) {
    const fromNewest = eventTimes.length - 1 - i;
    await run(a, 'ooo-reroute', t, EVENT, { outcome: history.eventOutcome?.(fromNewest), message: `Communication/m${i}`, subscription: `Subscription/${subscription.id}` });
  }
  return { events: eventTimes.length };
}

const flat = (text: string): string => text.replace(/\n {2}(?! )/g, ' ');

describe('status reads each kind of run wherever it is among hundreds of others', () => {
  test('a healthy busy morning: every sweep and hourly run found among 400 runs for messages; no problem, exit 0', async () => {
    const a = await project();
    const { events } = await morning(a, T('10:40'));
    expect(events).toBeGreaterThan(400);
    vi.setSystemTime(new Date(T('10:40')));
    const { code, out } = await a.run('status');
    expect(out).toContain('No problems found.');
    expect(code).toBe(0);
    expect(out).toContain('on cron    sweeps: 11-27 10:30 ok; 10:15 ok; 10:00 ok; 09:45 ok');
    expect(out).toContain('on cron    hourly runs: 11-27 10:00 ok; 09:00 ok; 08:00 ok; 07:00 ok');
  });

  test('the last three sweeps stopped early, with fifty runs for messages after them: exit 1, with the fix', async () => {
    const a = await project();
    await morning(a, T('10:40'), { sweep: (t) => ({ log: t >= T('10:00') ? SWEEP(4, true) : SWEEP() }) });
    vi.setSystemTime(new Date(T('10:40')));
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    expect(flat(out)).toContain(
      'ooo-reroute: its last 3 sweeps each left work for later (stopped early (deadline); stopped early (deadline); stopped early (deadline)): raise BOT_TIMEOUT_SECONDS (then npm run setup) or the FHIR quota, or run it more often'
    );
  });

  test("the reminders bot's last five runs failed (outcome 8): exit 1, the failure named, what to do", async () => {
    const a = await project();
    await morning(a, T('11:40'), { hourly: (t) => (t >= T('07:00') ? { log: HOURLY(true), outcome: '8' } : { log: HOURLY() }) });
    vi.setSystemTime(new Date(T('11:40')));
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    const text = flat(out);
    expect(text).toContain('stale-thread-reminders: 3 of its last 3 hourly runs failed (11-27 11:00 outcome 8; 11-27 10:00 outcome 8; 11-27 09:00 outcome 8)');
    expect(text).toContain("The reason is in the run's log (npm run status -- --verbose); fix it, the next run retries");
    // One failure among the last three scheduled runs is already a problem.
    const b = await project();
    await morning(b, T('11:40'), { hourly: (t) => (t === T('10:00') ? { log: HOURLY(true), outcome: '4' } : { log: HOURLY() }) });
    vi.setSystemTime(new Date(T('11:40')));
    expect(flat((await b.run('status')).out)).toContain('stale-thread-reminders: 1 of its last 3 hourly runs failed (11-27 10:00 failed)');
  });

  test('a run of failed event runs is flagged; a single failure among hundreds is not', async () => {
    const a = await project();
    await morning(a, T('10:40'), { eventOutcome: (n) => (n < 4 ? '4' : '0') });
    vi.setSystemTime(new Date(T('10:40')));
    const flagged = await a.run('status');
    expect(flagged.code).toBe(1);
    expect(flat(flagged.out)).toContain('ooo-reroute: its last 4 runs for new messages failed');
    const b = await project();
    await morning(b, T('10:40'), { eventOutcome: (n) => (n === 5 ? '4' : '0') });
    vi.setSystemTime(new Date(T('10:40')));
    expect((await b.run('status')).code).toBe(0);
  });

  test('a cron silently off: no sweep since 09:50 while messages keep running the bot: exit 1, how to register the cron again', async () => {
    const a = await project();
    await morning(a, T('10:40'), { sweep: (t) => (t < T('09:50') ? { log: SWEEP() } : undefined) });
    vi.setSystemTime(new Date(T('10:40')));
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    const text = flat(out);
    expect(text).toContain('ooo-reroute: it did not run at 11-27 10:30 or 11-27 10:15 UTC although its cron (*/15 * * * *) says it should');
    expect(text).toContain('clear the Bot\'s cronString (Medplum app, Bot, Edit), then npm run setup -- --reset-bot-settings');
    expect(out).toContain('sweeps: 11-27 10:30 missed; 10:15 missed; 10:00 missed; 09:45 ok');
  });

  test('a Bot written after its last ticks is not blamed for them; one written before them is', async () => {
    const a = await project('10:20');
    vi.setSystemTime(new Date(T('10:40')));
    const fresh = await a.run('status');
    expect(fresh.code).toBe(0);
    expect(fresh.out).toContain('sweeps: 11-27 10:30 missed; 10:15 -; 10:00 -; 09:45 -');
    vi.setSystemTime(new Date(T('10:55')));
    expect(flat((await a.run('status')).out)).toContain('ooo-reroute: it did not run at 11-27 10:45 or 11-27 10:30 UTC');
  });

  test('a Subscription that delivers nothing: thread messages since it was made have no run: exit 1', async () => {
    const a = await project();
    await morning(a, T('10:40'));
    const thread = await a.server.seed({ resourceType: 'Communication', status: 'in-progress' });
    const messages = [];
    for (const at of ['10:10', '10:20', '10:25']) {
      messages.push(
        await a.server.seed({
          resourceType: 'Communication',
          status: 'in-progress',
          partOf: [{ reference: `Communication/${thread.id}` }],
          sent: iso(T(at)),
          meta: { lastUpdated: iso(T(at)) },
        })
      );
    }
    vi.setSystemTime(new Date(T('10:40')));
    const silent = await a.run('status');
    expect(silent.code).toBe(1);
    expect(flat(silent.out)).toContain('ooo-reroute: its last 3 thread messages');
    expect(flat(silent.out)).toContain('did not run it although its Subscription is active');
    // Once one of them has a run, the Subscription delivers.
    const [subscription] = await a.server.searchAll<Subscription>('Subscription');
    await run(a, 'ooo-reroute', T('10:25') + 100, EVENT, { message: `Communication/${messages[2].id}`, subscription: `Subscription/${subscription.id}` });
    expect((await a.run('status')).code).toBe(0);
  });
});

describe('the pure parts', () => {
  test('cron expressions as the server checks them (cron-validator, default options)', () => {
    for (const ok of ['*/15 * * * *', '0 * * * *', '5/15 1-5 * * 1-5', '0 3 1,15 * 0', ' 30  *  * * * ']) {
      expect(checkCron(ok), ok).toHaveProperty('cron');
    }
    for (const bad of ['0 */15 * * * *', '* * * *', 'MON * * * *', '0 9 * * MON', '0 9 * JAN *', '0 9 ? * *', '0 9 * * 7', '*/0 * * * *', '60 * * * *', '5-1 * * * *', '*/ * * * *', '0 24 * * *', '', 'L * * * *']) {
      expect(checkCron(bad), bad).toHaveProperty('error');
    }
    expect(checkCron('0 */15 * * * *')).toEqual({ error: expect.stringContaining('a seconds field is refused by the server') });
  });

  test('ticks in UTC; day of month and day of week either match when both are set', () => {
    const cron = parseCron('30 9 1 * 1') as NonNullable<ReturnType<typeof parseCron>>;
    expect(firesAt(cron, Date.parse('2026-12-01T09:30:00Z'))).toBe(true); // the 1st (a Tuesday)
    expect(firesAt(cron, Date.parse('2026-12-07T09:30:00Z'))).toBe(true); // a Monday
    expect(firesAt(cron, Date.parse('2026-12-08T09:30:00Z'))).toBe(false);
    expect(previousTicks(parseCron('*/15 * * * *') as never, T('10:44'), 3).map(iso)).toEqual([iso(T('10:30')), iso(T('10:15')), iso(T('10:00'))]);
  });

  test('a run belongs to one tick, also when a frequent cron queues runs behind each other', () => {
    const cron = parseCron('* * * * *') as never;
    const ticks = ticksToRead(cron, { bot: 'ooo-reroute', timeoutSeconds: 60, now: T('10:10') });
    const late = (hhmm: string, seconds: number) =>
      describeRun({ resourceType: 'AuditEvent', recorded: iso(T(hhmm) + seconds * 1000 + 500), period: { start: iso(T(hhmm) + seconds * 1000) }, outcome: '0', outcomeDesc: SWEEP() } as AuditEvent);
    // Four runs, each 70 s after the one before: each takes one tick.
    const runs = [late('10:00', 0), late('10:01', 10), late('10:02', 20), late('10:03', 30)];
    const given = assignRuns(ticks, runs);
    expect(given.map((t) => t.run && runs.indexOf(t.run))).toEqual([3, 2, 1, 0]);
    expect(judgeRuns(given, [], '* * * * *')).toEqual([]);
  });
});
