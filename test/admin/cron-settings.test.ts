// A cron setting is checked as the Medplum server checks a Bot's cronString (cron-validator): the
// server stores one it refuses and never runs the Bot on schedule, saying nothing.
import type { Bot } from '@medplum/fhirtypes';
import { beforeAll, expect, test } from 'vitest';
import { admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const writes = (a: ReturnType<typeof admin>): string[] => a.server.requests.filter((r) => r.method !== 'GET').map((r) => r.key);
const flat = (text: string): string => text.replace(/\n {2}(?! )/g, ' ');

test('settings refuses a cron the server would refuse (a seconds field, names, ?, 7 for Sunday), exit 2, nothing written', async () => {
  const a = admin();
  for (const [value, reason] of [
    ['0 */15 * * * *', 'a seconds field is refused by the server'],
    ['0 9 * * MON', 'no names such as MON or JAN'],
    ['0 9 ? * *', 'no ?'],
    ['0 9 * * 7', '7 is refused'],
    ['*/0 * * * *', 'a step must be a whole number above 0'],
  ]) {
    const run = await a.run('settings', 'set', `OOO_SWEEP_CRON=${value}`);
    expect(run.code, value).toBe(2);
    expect(run.err, value).toContain(`- OOO_SWEEP_CRON: `);
    expect(run.err, value).toContain(reason);
    expect(run.err, value).toContain('the server would store it and never run the Bot on schedule');
  }
  expect(writes(a)).toEqual([]);
  const ok = await a.run('settings', 'set', 'STALE_THREAD_CRON=  30  * * * 1-5 ');
  expect(ok.code).toBe(0);
  expect(await a.secrets()).toEqual({ STALE_THREAD_CRON: '30 * * * 1-5' });
});

test('a cron secret set by hand that the server would refuse: status flags it, setup refuses and changes nothing, get shows it', async () => {
  const a = admin();
  await a.run('setup');
  const before = await a.server.read<Bot>('Bot', a.ids()['ooo-reroute']);
  await a.setSecrets({ ...(await a.secrets()), OOO_SWEEP_CRON: '0 */15 * * * *' });
  const status = await a.run('status');
  expect(status.code).toBe(1);
  expect(flat(status.out)).toContain('- secret OOO_SWEEP_CRON: must be a cron expression of exactly 5 fields');
  expect(flat(status.out)).toContain('Fix: npm run settings -- set OOO_SWEEP_CRON=<5-field cron>, then npm run setup');
  a.server.resetCounts();
  const setup = await a.run('setup');
  expect(setup.code).toBe(1);
  expect(setup.err).toContain('Not changing anything:');
  expect(setup.err).toContain('- secret OOO_SWEEP_CRON: must be a cron expression of exactly 5 fields');
  expect(writes(a)).toEqual([]);
  expect((await a.server.read<Bot>('Bot', a.ids()['ooo-reroute'])).cronString).toBe(before.cronString);
  expect((await a.run('settings', 'get', 'OOO_SWEEP_CRON')).out).toContain('PROBLEM: must be a cron expression of exactly 5 fields');
});
