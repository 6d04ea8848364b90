// The trust check on the synthetic clinic: the real bots (the reminders, the response-Task lifecycle,
// the out-of-office reroute) run over its history on the test server; the replay of the same
// settings must agree with what they did, and say where it does not.
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { whatIf } from '../../src/what-if/compare';
import { readPeriod } from '../../src/what-if/reads';
import type { PeriodRead } from '../../src/what-if/reads';
import { botSettings } from '../../src/what-if/settings';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { createServerMock } from '../harness/server-mock';
import { runBots } from './bots-ran';
import { DAY, seedScript, writeScript } from './clinic';

const FROM = Date.parse('2026-10-12T00:00:00Z');
const SINCE = FROM + 3 * DAY;
const UNTIL = FROM + 12 * DAY;
const quiet = { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined };
let read: PeriodRead;
let secrets: Record<string, string>;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  const script = writeScript({ seed: 7, start: FROM, days: 12, threads: 12 });
  const server = createServerMock();
  const seeded = await seedScript(server, script, false);
  secrets = { STALE_AFTER_HOURS: '20', ESCALATE_AFTER_HOURS: '8', RESPONSE_TASKS: 'on', OOO_COVERAGE: JSON.stringify({ [seeded.staff[0].reference]: seeded.staff[2].reference }) };
  await runBots(server, script, seeded, secrets, UNTIL, (ms) => vi.setSystemTime(ms));
  vi.useRealTimers();
  const reader = server.clientAs('analyst');
  read = await readPeriod(reader, new QuotaPacer(reader), quiet, { from: FROM, since: SINCE, until: UNTIL }, []);
}, 300_000);

afterAll(() => {
  vi.useRealTimers();
});

test('the replay of the settings the bots ran with agrees with what they did', { timeout: 120_000 }, () => {
  const result = whatIf(read, botSettings(secrets), botSettings(secrets), []);
  const by = Object.fromEntries(result.trust.agreements.map((a) => [a.kind, a]));
  expect(by.reminders.actual).toBeGreaterThan(3);
  expect(by.escalations.actual).toBeGreaterThan(3);
  expect(by['response Tasks'].actual).toBeGreaterThan(3);
  expect(by.reminders.matched).toBe(by.reminders.actual);
  expect(by.reminders.replay).toBe(by.reminders.actual);
  expect(by.escalations.matched).toBe(by.escalations.actual);
  expect(result.trust.overall).toBeGreaterThanOrEqual(0.95);
  expect(result.trust.lines.at(-1)).toMatch(/^agreement: \d+(\.\d)?% of what either/);
});

test('a replay with other settings than the bots ran with shows the differences, by thread', { timeout: 120_000 }, () => {
  const result = whatIf(read, botSettings({ ...secrets, STALE_AFTER_HOURS: '60' }), botSettings(secrets), []);
  const reminders = result.trust.agreements.find((a) => a.kind === 'reminders');
  expect(reminders?.matched).toBeLessThan(reminders?.actual as number);
  expect(reminders?.differences[0]).toMatch(/^reminder reminder:[\w-]+:after:[\w-]+ on Communication\/[\w-]+: done by the bots at .+Z, not in the replay$/);
  expect(result.trust.overall).toBeLessThan(0.95);
});
