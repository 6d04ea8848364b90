// What is set against what runs: a cron or timeout setting the Bots do not have is a problem with its
// fix; a setting an admin unsets stays unset; owners by name and id; --env NAME reads .env.NAME.
import type { Bot, Extension } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test } from 'vitest';
import baseConfig from '../../medplum.config.json';
import { main } from '../../src/admin/cli';
import type { CliIo } from '../../src/admin/cli';
import { dotEnvFile } from '../../src/admin/connect';
import { APPLIED_SETTINGS_URL } from '../../src/admin/project-setup';
import { ref, seedPatient, seedPractitioner, seedTask, seedThread } from '../harness/fixtures';
import { admin } from './admin-harness';
import type { Admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const flat = (text: string): string => text.replace(/\n {2}(?! )/g, ' ');
const problems = (out: string): string[] => flat(out.split('Problems:\n')[1] ?? '').split('\n').filter(Boolean);

async function deployed(): Promise<Admin> {
  const a = admin();
  await a.run('setup');
  for (const id of Object.values(a.ids())) {
    await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
  }
  return a;
}

describe('status compares what is set with what runs', () => {
  test('a cron set but not applied: status exits 1 and says to run setup; after setup it runs as set', async () => {
    const a = await deployed();
    expect((await a.run('settings', 'set', 'STALE_THREAD_CRON=30 * * * *')).code).toBe(0);
    const before = await a.run('status');
    expect(before.code).toBe(1);
    expect(problems(before.out)).toEqual([
      '- stale-thread-reminders: it runs with cron 0 * * * * while STALE_THREAD_CRON is 30 * * * *: the setting is not applied. Fix: npm run setup',
    ]);
    await a.run('setup');
    expect((await a.server.read<Bot>('Bot', a.ids()['stale-thread-reminders'])).cronString).toBe('30 * * * *');
    const after = await a.run('status');
    expect(after.out).toContain('No problems found.');
    expect(after.code).toBe(0);
  });

  test('a timeout set but not applied, above or below the Bot\'s: a problem either way, with its fix', async () => {
    const a = await deployed();
    await a.run('settings', 'set', 'BOT_TIMEOUT_SECONDS=90');
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    expect(problems(out)).toEqual([
      '- ooo-reroute: timeout 60 s is below BOT_TIMEOUT_SECONDS 90: the bot plans for time it does not have (the setting is not applied). Fix: npm run setup',
      '- stale-thread-reminders: timeout 60 s is below BOT_TIMEOUT_SECONDS 90: the bot plans for time it does not have (the setting is not applied). Fix: npm run setup',
    ]);
    await a.run('setup');
    expect((await a.run('status')).code).toBe(0);
    await a.run('settings', 'set', 'BOT_TIMEOUT_SECONDS=30');
    expect(problems((await a.run('status')).out)[0]).toBe('- ooo-reroute: it runs with timeout 90 s while BOT_TIMEOUT_SECONDS is 30: the setting is not applied. Fix: npm run setup');
  });

  test('a cron changed by hand on the Bot: setup keeps it, so the fix named is --reset-bot-settings (or the setting)', async () => {
    const a = await deployed();
    const id = a.ids()['ooo-reroute'];
    await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), cronString: '*/5 * * * *' });
    const { code, out } = await a.run('status');
    expect(code).toBe(1);
    expect(problems(out)).toEqual([
      "- ooo-reroute: it runs with cron */5 * * * * while OOO_SWEEP_CRON is */15 * * * *: the setting is not applied. The Bot's value was set by hand and setup keeps it. Fix: npm run setup -- --reset-bot-settings applies the setting, or npm run settings -- set OOO_SWEEP_CRON=<the Bot's value> keeps the Bot's",
    ]);
    await a.run('settings', 'set', 'OOO_SWEEP_CRON=*/5 * * * *');
    expect((await a.run('status')).code).toBe(0);
  });
});

describe('a setting an admin unsets stays unset', () => {
  test('settings unset STALE_AFTER_HOURS, then setup: not written back; setup says it keeps it unset and why', async () => {
    const a = await deployed();
    expect(await a.secrets()).toHaveProperty('STALE_AFTER_HOURS', '72');
    await a.run('settings', 'unset', 'STALE_AFTER_HOURS', 'OOO_COVERAGE');
    const { code, out } = await a.run('setup');
    expect(code).toBe(0);
    expect(await a.secrets()).not.toHaveProperty('STALE_AFTER_HOURS');
    expect(await a.secrets()).not.toHaveProperty('OOO_COVERAGE');
    expect(out).toContain('kept: OOO_COVERAGE, STALE_AFTER_HOURS were removed after setup added them: kept unset (OOO_COVERAGE: no covers; STALE_AFTER_HOURS: 72)');
    expect((await a.run('setup', '--dry-run')).out).not.toContain('set-secrets');
  });

  test('a Project set up by an earlier version (no record of the defaults it added) keeps an unset setting unset too; a fresh one gets the defaults', async () => {
    const a = await deployed();
    for (const id of Object.values(a.ids())) {
      const bot = await a.server.read<Bot>('Bot', id);
      const applied = bot.extension?.find((e) => e.url === APPLIED_SETTINGS_URL) as Extension;
      // What the previous setup recorded: the cron and timeout it applied, nothing about the secrets.
      await a.server.update({ ...bot, extension: [{ ...applied, extension: applied.extension?.filter((e) => e.url !== 'secretDefaults') }] });
    }
    await a.run('settings', 'unset', 'ESCALATE_AFTER_HOURS');
    const upgrade = await a.run('setup');
    expect(await a.secrets()).not.toHaveProperty('ESCALATE_AFTER_HOURS');
    expect(upgrade.out).toContain('ESCALATE_AFTER_HOURS was removed after setup added it: kept unset');
    expect(upgrade.out).toContain('records the setting defaults setup added, so that one an admin removes stays removed');

    const fresh = admin();
    await fresh.setSecrets({ PARTNER_API_TOKEN: 'x' });
    await fresh.run('setup');
    expect(Object.keys(await fresh.secrets()).sort()).toEqual(['BOT_TIMEOUT_SECONDS', 'ESCALATE_AFTER_HOURS', 'OOO_COVERAGE', 'OOO_SWEEP_CRON', 'PARTNER_API_TOKEN', 'STALE_AFTER_HOURS', 'STALE_THREAD_CRON']);
  });
});

test('status names the owners of the data problems by name and id', async () => {
  const a = await deployed();
  const doctor = await seedPractitioner(a.server, null);
  await seedTask(a.server, await seedThread(a.server, { subject: ref(await seedPatient(a.server)) }), { owner: ref(doctor) });
  const { out } = await a.run('status');
  expect(flat(out)).toContain(`Pat PHI-PRACTITIONER-NAME [Practitioner/${doctor.id}] (1)`);
  expect(out).not.toContain('PHI-MESSAGE-TEXT');
  expect(out).not.toContain('PHI-THREAD-TOPIC');
});

describe('--env NAME', () => {
  const run = async (argv: string[], files: Record<string, string>): Promise<{ code: number; loaded: string[]; err: string[] }> => {
    const a = admin();
    const loaded: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      out: () => undefined,
      err: (l) => err.push(l),
      connect: async () => a.server.medplum,
      readFile: (p) => files[p] ?? '',
      fileSize: (p) => files[p]?.length,
      loadEnvFile: (p) => loaded.push(p),
    };
    return { code: await main(argv, io), loaded, err };
  };
  const config = JSON.stringify(baseConfig);

  test('reads .env.NAME when present, and never .env for another environment', async () => {
    const staging = await run(['status', '--env', 'staging'], { 'medplum.staging.config.json': config, '.env.staging': 'X=1', '.env': 'X=2' });
    expect(staging.loaded).toEqual(['.env.staging']);
    expect(staging.err).toContain('--env staging: server and credentials from .env.staging (variables already set in the environment win)');
    const missing = await run(['settings', 'get', '--env', 'staging'], { '.env': 'X=2' });
    expect(missing.loaded).toEqual([]);
    expect(missing.err[0]).toContain("--env staging: no .env.staging; server and credentials from the environment only (.env is not read: it holds another environment's)");
    const plain = await run(['status'], { 'medplum.config.json': config, '.env': 'X=2' });
    expect(plain.loaded).toEqual(['.env']);
    expect(dotEnvFile('prod', () => false)).toBeUndefined();
  });
});
