// A Task made without authoredOn (another integration's, the load test's) enters the replay when it
// was first stored, not at its current version's lastUpdated: once the bot has rerouted it, that is
// the reroute's time, after the patient's message, so the replay's event path found no Task to move
// and the bots' reroute was missing from the replay (found on a real server, #30).
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { handler as oooHandler } from '../../src/ooo-reroute';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { whatIf } from '../../src/what-if/compare';
import { readPeriod } from '../../src/what-if/reads';
import type { PeriodRead } from '../../src/what-if/reads';
import { botSettings } from '../../src/what-if/settings';
import { botEvent, seedMessage, seedOwnedThread } from '../harness/fixtures';
import type { OwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';

const T0 = Date.parse('2026-12-06T07:05:00Z');
const MIN = 60_000;
const quiet = { phase: () => undefined, tick: () => undefined, waiting: () => undefined, done: () => undefined };
let read: PeriodRead;
let seeded: OwnedThread;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(T0);
  const server = createServerMock();
  seeded = await seedOwnedThread(server, { away: true, task: { authoredOn: undefined } });
  vi.setSystemTime(T0 + 10 * MIN);
  const message = await seedMessage(server, seeded.thread, seeded.patient, new Date(T0 + 10 * MIN).toISOString());
  vi.setSystemTime(T0 + 10 * MIN + 500);
  const log = console.log;
  console.log = () => undefined;
  try {
    await oooHandler(server.medplum, botEvent(message));
  } finally {
    console.log = log;
  }
  vi.useRealTimers();
  read = await readPeriod(server.medplum, new QuotaPacer(server.medplum), quiet, { from: T0 - 3_600_000, since: T0, until: T0 + 30 * MIN }, []);
}, 120_000);

afterAll(() => {
  vi.useRealTimers();
});

test('the bot rerouted the Task on the message, and changed it then', () => {
  const task = read.tasks.find((t) => t.id === seeded.task.id);
  expect(task?.owner).toBeUndefined();
  expect(Date.parse(task?.meta?.lastUpdated ?? '')).toBe(T0 + 10 * MIN + 500);
});

test('the Task enters the replay when first stored, and the replay reroutes it on the message as the bot did', () => {
  expect(read.facts.outsideTasks.map((o) => [o.task.id, o.at])).toEqual([[seeded.task.id, T0]]);
  const result = whatIf(read, botSettings({}), botSettings({}), []);
  const reroutes = result.trust.agreements.find((a) => a.kind === 'reroutes');
  expect(reroutes).toMatchObject({ actual: 1, replay: 1, matched: 1 });
  expect(result.events.current.filter((e) => e.kind === 'rerouted').map((e) => e.at)).toEqual([T0 + 10 * MIN]);
});
