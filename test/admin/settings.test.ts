// `npm run settings`: checked by the bots' own validators, merged into the Project's secrets.
import { beforeAll, describe, expect, test } from 'vitest';
import { parseSettingsWords } from '../../src/admin/settings';
import { obsoleteSecrets, secretProblems, SECRETS } from '../../src/lib/secret-catalogue';
import { admin } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const writes = (a: ReturnType<typeof admin>): string[] => a.server.requests.filter((r) => r.method !== 'GET').map((r) => r.key);

describe('npm run settings', () => {
  test('set STALE_AFTER_HOURS=abc is refused with the reason, exit 2, nothing written', async () => {
    const a = admin();
    await a.setSecrets({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', STALE_AFTER_HOURS: '72' });
    a.server.resetCounts();
    const run = await a.run('settings', 'set', 'STALE_AFTER_HOURS=abc');
    expect(run.code).toBe(2);
    expect(run.err).toContain('- STALE_AFTER_HOURS: not a positive number');
    expect(writes(a)).toEqual([]);
    expect(await a.secrets()).toEqual({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', STALE_AFTER_HOURS: '72' });
  });

  test('set BOT_TIMEOUT_SECONDS=90.5 is refused (the server stores Bot.timeout as an integer, and setup would fail), exit 2, nothing written', async () => {
    const a = admin();
    for (const bad of ['90.5', '0', '901', 'ten']) {
      const run = await a.run('settings', 'set', `BOT_TIMEOUT_SECONDS=${bad}`);
      expect(run.code).toBe(2);
      expect(run.err).toContain('- BOT_TIMEOUT_SECONDS: must be a whole number of seconds from 1 to 900');
    }
    expect(writes(a)).toEqual([]);
    expect((await a.run('settings', 'set', 'BOT_TIMEOUT_SECONDS=90')).code).toBe(0);
  });

  test('set STALE_AFTER_HOURS=48 keeps every other secret, shows their names only, and says nothing more is needed', async () => {
    const a = admin();
    await a.setSecrets({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', OTHER_INTEGRATION_KEY: 'secret-2', STALE_AFTER_HOURS: '72' });
    const run = await a.run('settings', 'set', 'STALE_AFTER_HOURS=48');
    expect(run.code).toBe(0);
    expect(await a.secrets()).toEqual({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', OTHER_INTEGRATION_KEY: 'secret-2', STALE_AFTER_HOURS: '48' });
    expect(run.out).toContain('STALE_AFTER_HOURS = 48 (was 72)');
    expect(run.out).toContain('2 other secret(s) kept as they were');
    expect(run.out).not.toContain('next:');
    const get = await a.run('settings', 'get');
    for (const text of [run.out, run.err, get.out, get.err]) {
      expect(text).not.toContain('sk_live_NEVER_PRINT_ME');
      expect(text).not.toContain('secret-2');
    }
    expect(get.out).toContain('other secrets (kept as they are, values not shown): PARTNER_API_TOKEN, OTHER_INTEGRATION_KEY');
  });

  test('a malformed BUSINESS_HOURS, an array OOO_COVERAGE, a secret the bots do not read, an obsolete one: all refused at once, nothing written', async () => {
    const a = admin();
    const run = await a.run('settings', 'set', 'BUSINESS_HOURS={"timeZone":"Mars/Base"}', 'OOO_COVERAGE=["Practitioner/b"]', 'PARTNER_API_TOKEN=x', 'OOO_WINDOW_MINUTES=30', 'RESPONSE_TASKS=on');
    expect(run.code).toBe(2);
    expect(run.err.split('\n').filter((l) => l.startsWith('- '))).toHaveLength(4);
    expect(run.err).toContain('PARTNER_API_TOKEN is not a secret these bots read');
    expect(run.err).toContain('OOO_WINDOW_MINUTES: no longer read');
    expect(writes(a)).toEqual([]);
  });

  test('a cron or timeout change names the command that applies it; --dry-run writes nothing', async () => {
    const a = admin();
    const dry = await a.run('settings', 'set', 'OOO_SWEEP_CRON=*/5 * * * *', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('Dry run: nothing written.');
    expect(writes(a)).toEqual([]);
    const real = await a.run('settings', 'set', 'OOO_SWEEP_CRON=*/5 * * * *', 'RESPONSE_TASKS=on');
    expect(real.out).toContain("next: npm run setup (applies OOO_SWEEP_CRON to the ooo-reroute Bot's cronString)");
    expect(await a.secrets()).toMatchObject({ OOO_SWEEP_CRON: '*/5 * * * *', RESPONSE_TASKS: 'on' });
  });

  test('unset removes a bot secret and keeps the rest; get shows what the bot does without it', async () => {
    const a = admin();
    await a.setSecrets({ PARTNER_API_TOKEN: 'x', RESPONSE_TASKS: 'on' });
    expect((await a.run('settings', 'unset', 'RESPONSE_TASKS')).out).toContain('RESPONSE_TASKS removed; the bot uses: off');
    expect(await a.secrets()).toEqual({ PARTNER_API_TOKEN: 'x' });
    expect((await a.run('settings', 'get', 'RESPONSE_TASKS')).out).toBe('RESPONSE_TASKS (absent): off');
    expect((await a.run('settings', 'unset', 'PARTNER_API_TOKEN')).code).toBe(2);
    expect((await a.run('settings', 'get', 'NOPE')).code).toBe(2);
  });

  test('strict words: exit 2 before any request', async () => {
    for (const argv of [['settings'], ['settings', 'put', 'A=1'], ['settings', 'set'], ['settings', 'set', 'STALE_AFTER_HOURS'], ['settings', 'unset'], ['settings', 'get', '--force']]) {
      const a = admin();
      expect((await a.run(...argv)).code, argv.join(' ')).toBe(2);
      expect(a.server.count()).toBe(0);
    }
    expect(parseSettingsWords(['set', 'STALE_RULES=[{"afterHours":4}]'])).toEqual({ verb: 'set', pairs: [['STALE_RULES', '[{"afterHours":4}]']] });
  });
});

describe('the catalogue', () => {
  test('every secret the bots read is listed once, and every check accepts its default', () => {
    expect(new Set(SECRETS.map((s) => s.name)).size).toBe(SECRETS.length);
    for (const spec of SECRETS.filter((s) => s.setupDefault !== undefined)) {
      expect(spec.check(spec.setupDefault as string), spec.name).not.toHaveProperty('error');
    }
  });

  test('problems name the secret and the fix, never the value', () => {
    const lines = secretProblems([
      { name: 'BUSINESS_HOURS', valueString: '{"SECRET-VALUE' },
      { name: 'OOO_WINDOW_MINUTES', valueString: '60' },
      { name: 'STALE_AFTER_HOURS', valueInteger: 48 },
      { name: 'PARTNER_API_TOKEN', valueString: 'whatever' },
    ]);
    expect(lines).toEqual(['secret BUSINESS_HOURS: not valid JSON. The bot ignores it and uses: every hour counts. Fix: npm run settings -- set BUSINESS_HOURS=<value>']);
    // A secret an earlier setup wrote and this version ignores is a note, not a problem.
    expect(obsoleteSecrets([{ name: 'OOO_WINDOW_MINUTES', valueString: '60' }, { name: 'STALE_AFTER_HOURS', valueString: '1' }])).toEqual([
      'secret OOO_WINDOW_MINUTES is no longer read: a provider is available at the instant, by working hours and absence blocks; remove it with: npm run settings -- unset OOO_WINDOW_MINUTES',
    ]);
  });
});

test('an upgrade: the secret an earlier setup wrote and this version ignores is a note in setup and status, not a failure', async () => {
  const a = admin();
  await a.setSecrets({ OOO_WINDOW_MINUTES: '60' });
  const setup = await a.run('setup');
  expect(setup.code).toBe(0);
  expect(setup.out).toContain('Note: secret OOO_WINDOW_MINUTES is no longer read');
  expect((await a.run('status')).out).toContain('Note: secret OOO_WINDOW_MINUTES is no longer read');
});
