// Reach on any cron spacing: a sweep cut by its deadline works a chunk or two of a hundred threads;
// the next run must start elsewhere, so every chunk is reached within a few runs. The first chunk
// used to be the minute number modulo the chunk count: every 15 minutes with 3, 5 or 15 chunks (or
// hourly with any count dividing 60), every run started at the same chunk and the others starved.
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { handler } from '../../src/ooo-reroute';
import type { SweepSummary } from '../../src/ooo-reroute';
import { readRerouteConfig } from '../../src/realtime/settings';
import { sweepNumber } from '../../src/realtime/sweep';
import { useFixedTimeAndQuietConsole } from '../harness/bot-test-setup';
import { botEvent, ref, seedMessage, seedOwnedThread, seedPatient, seedPractitioner, seedSchedule, seedTask, seedThread } from '../harness/fixtures';
import type { OwnedThread } from '../harness/fixtures';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

const DAY0 = Date.parse('2026-11-27T00:00:00.000Z');
const MINUTE = 60_000;

useFixedTimeAndQuietConsole(DAY0);

/**
 * 450 threads with open Tasks (five chunks of up to a hundred): answered threads of a present
 * owner, and one thread of an away owner, whose patient waits, in each chunk.
 */
async function clinic(server: ServerMock, start: number): Promise<OwnedThread[]> {
  const present = await seedPractitioner(server);
  await seedSchedule(server, [ref(present)]);
  const patient = ref(await seedPatient(server));
  const away: OwnedThread[] = [];
  for (let i = 0; i < 450; i++) {
    if (i % 100 === 50) {
      const t = await seedOwnedThread(server, { away: true, task: { authoredOn: new Date(start - 60 * MINUTE).toISOString() } });
      await seedMessage(server, t.thread, t.patient, new Date(start - 30 * MINUTE).toISOString());
      away.push(t);
      continue;
    }
    const thread = await seedThread(server, { subject: patient, recipient: [patient, ref(present)] });
    await seedTask(server, thread, { owner: ref(present), authoredOn: new Date(start - 60 * MINUTE).toISOString() });
    await seedMessage(server, thread, patient, new Date(start - 30 * MINUTE).toISOString());
    await seedMessage(server, thread, ref(present), new Date(start - 20 * MINUTE).toISOString());
  }
  return away;
}

/** Runs sweeps on a cron's ticks, each slowed to a second a request (10 s timeout: a chunk or two), until every away owner's thread is rerouted. */
async function sweepsToReach(cron: string, firstTick: number, spacing: number): Promise<{ sweeps: number; cut: number }> {
  vi.setSystemTime(new Date(firstTick));
  const server = createServerMock();
  const away = await clinic(server, firstTick);
  server.beforeRequest = () => {
    vi.setSystemTime(new Date(Date.now() + 1_000));
  };
  const pending = async (): Promise<number> => (await Promise.all(away.map((t) => server.read<Task>('Task', t.task.id)))).filter((t) => t.owner).length;
  let cut = 0;
  for (let sweep = 1; sweep <= 8; sweep++) {
    vi.setSystemTime(new Date(firstTick + (sweep - 1) * spacing));
    // A cron run: the server passes the Bot itself, with its cronString.
    const summary = (await handler(server.medplum, botEvent({ resourceType: 'Bot', id: 'ooo', name: 'ooo-reroute', cronString: cron }))) as SweepSummary;
    cut += summary.stoppedEarly ? 1 : 0;
    if (!(await pending())) {
      return { sweeps: sweep, cut };
    }
  }
  return { sweeps: Infinity, cut };
}

describe('every chunk is reached within a few runs, whatever the spacing and the first minute', () => {
  test.each([
    ['*/15 * * * *', 15, [0, 15, 30, 45]],
    ['*/5 * * * *', 5, [0, 25]],
    ['0 * * * *', 60, [0, 13 * 60]],
  ] as const)('%s', { timeout: 900_000 }, async (cron, spacingMinutes, firstMinutes) => {
    for (const first of firstMinutes) {
      const result = await sweepsToReach(cron, DAY0 + 9 * 60 * MINUTE + first * MINUTE, spacingMinutes * MINUTE);
      expect(result.sweeps, `${cron} from minute ${first}`).toBeLessThanOrEqual(8);
      expect(result.cut).toBeGreaterThan(0); // the deadline did cut sweeps
    }
  });
});

describe('sweepNumber', () => {
  test('grows by one from a tick to the next, whatever the spacing; the minute number without a cron', () => {
    const at = (hhmm: string, day = 0): number => DAY0 + day * 1440 * MINUTE + (Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3))) * MINUTE;
    const steps = (cron: string, ticks: number[]): number[] => ticks.slice(1).map((t, i) => sweepNumber(cron, t) - sweepNumber(cron, ticks[i]));
    expect(steps('*/15 * * * *', [at('23:30'), at('23:45'), at('00:00', 1), at('00:15', 1)])).toEqual([1, 1, 1]);
    expect(steps('0 * * * *', [at('22:00'), at('23:00'), at('00:00', 1)])).toEqual([1, 1]);
    expect(steps('*/5 * * * *', [at('10:00'), at('10:05'), at('10:10')])).toEqual([1, 1]);
    expect(steps('0 8-18/2 * * *', [at('16:00'), at('18:00'), at('08:00', 1)])).toEqual([1, 1]);
    // Seconds into the run's minute, and a run a little late, count as the tick they belong to.
    expect(sweepNumber('*/15 * * * *', at('10:15') + 40_000)).toBe(sweepNumber('*/15 * * * *', at('10:15')));
    expect(sweepNumber('*/15 * * * *', at('10:17'))).toBe(sweepNumber('*/15 * * * *', at('10:15')));
    expect(sweepNumber(undefined, at('10:17'))).toBe(Math.floor(at('10:17') / MINUTE));
    expect(sweepNumber('not a cron', at('10:17'))).toBe(Math.floor(at('10:17') / MINUTE));
  });
});

test('the sweep\'s cron: the cronString a cron run passes, else OOO_SWEEP_CRON, else none (a cron the server would refuse counts as none)', () => {
  const log = { info: () => undefined, warn: () => undefined };
  const config = (input: unknown, secrets: Record<string, string> = {}): string | undefined => readRerouteConfig(botEvent(input, secrets), log).sweepCron;
  expect(config({ resourceType: 'Bot', cronString: '0 * * * *' }, { OOO_SWEEP_CRON: '*/15 * * * *' })).toBe('0 * * * *');
  expect(config({}, { OOO_SWEEP_CRON: '*/15 * * * *' })).toBe('*/15 * * * *');
  expect(config({ resourceType: 'Bot' })).toBeUndefined();
  expect(config({ resourceType: 'Bot', cronString: '0 * * * MON' }, { OOO_SWEEP_CRON: '*/5 * * * *' })).toBe('*/5 * * * *');
});
