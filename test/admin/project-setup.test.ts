// `npm run setup` on a shared Project: through the command itself (cli.ts main), against the harness.
import type { AccessPolicy, Bot, ProjectMembership, Subscription } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test } from 'vitest';
import baseConfig from '../../medplum.config.json';
import { main } from '../../src/admin/cli';
import { PLACEHOLDER_BOT_ID } from '../../src/admin/project-setup';
import type { ServerMock } from '../harness/server-mock';
import { admin, deployIo, PROJECT } from './admin-harness';
import { indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const TAG = 'urn:medplum-messaging-bots';

const writes = (server: ServerMock): string[] => server.requests.filter((r) => r.method !== 'GET').map((r) => r.key);

describe('npm run setup on an empty Project', () => {
  test('both Bots with membership, tagged AccessPolicy, cron and timeout; the Subscription; the secrets', async () => {
    const a = admin();
    const { code, out } = await a.run('setup');
    expect(code).toBe(0);
    expect(out).toContain(`Project ${PROJECT} on https://api.medplum.com/`);
    const ids = a.ids();
    const ooo = await a.server.read<Bot>('Bot', ids['ooo-reroute']);
    const stale = await a.server.read<Bot>('Bot', ids['stale-thread-reminders']);
    // The runtime is left to the server's default; both Bots get a cron (the OOO sweep) and the timeout.
    expect(ooo).toMatchObject({ name: 'ooo-reroute', runtimeVersion: 'awslambda', cronString: '*/15 * * * *', timeout: 60 });
    expect(stale).toMatchObject({ name: 'stale-thread-reminders', runtimeVersion: 'awslambda', cronString: '0 * * * *', timeout: 60 });
    for (const bot of [ooo, stale]) {
      expect(bot.meta?.tag).toContainEqual({ system: TAG, code: bot.name });
      const [membership] = await a.server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${bot.id}`);
      const policy = await a.server.read<AccessPolicy>('AccessPolicy', membership.accessPolicy?.reference?.split('/')[1] as string);
      expect(policy).toMatchObject({ name: `${bot.name} bot`, meta: { tag: [{ system: TAG, code: bot.name }] } });
    }
    const subscriptions = await a.server.searchAll<Subscription>('Subscription');
    expect(subscriptions).toHaveLength(1);
    expect(subscriptions[0]).toMatchObject({
      status: 'active',
      criteria: 'Communication?part-of:missing=false&status=in-progress',
      channel: { type: 'rest-hook', endpoint: `Bot/${ooo.id}` },
      extension: [{ url: 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction', valueCode: 'create' }],
      meta: { tag: [{ system: TAG, code: 'ooo-reroute' }] },
    });
    expect(await a.secrets()).toEqual({
      OOO_COVERAGE: '{}',
      OOO_SWEEP_CRON: '*/15 * * * *',
      STALE_AFTER_HOURS: '72',
      ESCALATE_AFTER_HOURS: '24',
      STALE_THREAD_CRON: '0 * * * *',
      BOT_TIMEOUT_SECONDS: '60',
    });
    expect(out).toContain('Bot ids written to medplum.config.json');
  });

  test('a second run writes nothing and says so; the Project is "ready" only once the bots are deployed', async () => {
    const a = admin();
    const first = await a.run('setup');
    expect(first.out).toContain('next: npm run deploy (ooo-reroute, stale-thread-reminders have no code yet)');
    a.server.resetCounts();
    const undeployed = await a.run('setup');
    expect(undeployed.out).not.toContain('the Project is ready');
    expect(undeployed.out).toContain('next: npm run deploy');
    for (const id of Object.values(a.ids())) {
      await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), executableCode: { contentType: 'text/javascript', url: 'Binary/x' } });
    }
    a.server.resetCounts();
    const { code, out } = await a.run('setup');
    expect(code).toBe(0);
    expect(out).toContain('Nothing to change: the Project is ready.');
    expect(out).not.toContain('next:');
    expect(writes(a.server)).toEqual([]);
  });

  test('a fresh clone (placeholder ids) on a Project this setup already made: nothing changes, and the ids are written', async () => {
    const a = admin();
    await a.run('setup');
    const ids = a.ids();
    a.files.set('medplum.config.json', JSON.stringify(baseConfig));
    a.server.resetCounts();
    const { code, out } = await a.run('setup');
    expect(code).toBe(0);
    expect(writes(a.server)).toEqual([]);
    expect(a.ids()).toEqual(ids);
    expect(out).toContain(`Bot ids written to medplum.config.json: ooo-reroute Bot/${ids['ooo-reroute']}, stale-thread-reminders Bot/${ids['stale-thread-reminders']}.`);
    expect(out).toContain('Nothing to change.');
    expect((await a.run('setup')).out).not.toContain('Bot ids written');
  });

  test('--runtime vmcontext sets the runtime; status shows it', async () => {
    const a = admin();
    await a.run('setup', '--runtime', 'vmcontext');
    expect((await a.server.read<Bot>('Bot', a.ids()['ooo-reroute'])).runtimeVersion).toBe('vmcontext');
    expect((await a.run('status')).out).toMatch(/^ooo-reroute {2}Bot\/\S+\n {2}state {6}NOT DEPLOYED, vmcontext, membership, policy ours, timeout 60 s$/m);
  });
});

describe('safety on a shared Project', () => {
  test('the plan never prints a secret value, in a dry run or a real one', async () => {
    const a = admin();
    await a.setSecrets({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', STALE_AFTER_HOURS: '48' });
    const dry = await a.run('setup', '--dry-run', '--verbose');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('set-secrets: secrets the bots read are absent; defaults added: OOO_COVERAGE');
    const real = await a.run('setup', '--verbose');
    for (const text of [dry.out, dry.err, real.out, real.err]) {
      expect(text).not.toContain('sk_live_NEVER_PRINT_ME');
      expect(text).not.toContain('PARTNER_API_TOKEN');
    }
    // The other integration's secret is kept as it was; ours already set are not changed.
    expect(await a.secrets()).toMatchObject({ PARTNER_API_TOKEN: 'sk_live_NEVER_PRINT_ME', STALE_AFTER_HOURS: '48' });
  });

  test('an AccessPolicy whose name starts like ours is never touched; setup makes and marks its own', async () => {
    const a = admin();
    const shared = await a.server.seed<AccessPolicy>({ resourceType: 'AccessPolicy', name: 'ooo-reroute bot (legacy, shared)', resource: [{ resourceType: 'Patient' }] });
    const sameName = await a.server.seed<AccessPolicy>({ resourceType: 'AccessPolicy', name: 'ooo-reroute bot', resource: [{ resourceType: '*' }] });
    await a.run('setup');
    expect(await a.server.read<AccessPolicy>('AccessPolicy', shared.id)).toEqual(shared);
    expect(await a.server.read<AccessPolicy>('AccessPolicy', sameName.id)).toEqual(sameName);
    expect(await a.server.searchAll<AccessPolicy>('AccessPolicy', `_tag=${TAG}|ooo-reroute`)).toHaveLength(1);
  });

  test('our policy loosened by hand is put back; a Subscription turned off stays off (a pause) unless --reset-bot-settings', async () => {
    const a = admin();
    await a.run('setup');
    const [policy] = await a.server.searchAll<AccessPolicy>('AccessPolicy', `_tag=${TAG}|ooo-reroute`);
    await a.server.update({ ...policy, resource: [{ resourceType: '*' }] });
    const [subscription] = await a.server.searchAll<Subscription>('Subscription');
    await a.server.update({ ...subscription, status: 'off' });

    const { out } = await a.run('setup');
    expect(out).toContain(`update-policy [ooo-reroute]: AccessPolicy/${policy.id} (ours) differs from what the bot needs`);
    expect(out).toContain(`kept [ooo-reroute]: Subscription/${subscription.id} is off (paused by hand?): kept off`);
    expect((await a.server.read<AccessPolicy>('AccessPolicy', policy.id as string)).resource?.map((r) => r.resourceType)).not.toContain('*');
    expect((await a.server.read<Subscription>('Subscription', subscription.id as string)).status).toBe('off');

    await a.run('setup', '--reset-bot-settings');
    expect((await a.server.read<Subscription>('Subscription', subscription.id as string)).status).toBe('active');
  });

  test('its Subscription is found by its tag: criteria changed by hand (or by an upgrade) are updated, leaving exactly one; a second one of ours is turned off', async () => {
    const a = admin();
    await a.run('setup');
    const [subscription] = await a.server.searchAll<Subscription>('Subscription');
    await a.server.update({ ...subscription, criteria: 'Communication?status=in-progress' });
    const { out } = await a.run('setup');
    expect(out).toContain(`update-subscription [ooo-reroute]: Subscription/${subscription.id} criteria Communication?status=in-progress becomes Communication?part-of:missing=false&status=in-progress`);
    const after = await a.server.searchAll<Subscription>('Subscription');
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: subscription.id, criteria: 'Communication?part-of:missing=false&status=in-progress', status: 'active' });

    const twin = await a.server.seed<Subscription>({ ...after[0], id: undefined });
    expect((await a.run('setup')).out).toContain(`Subscription/${twin.id} is a second one of setup's: turned off`);
    expect((await a.server.searchAll<Subscription>('Subscription')).filter((s) => s.status === 'active')).toHaveLength(1);
  });

  test('the plan for a new Project names the Subscription\'s criteria', async () => {
    const { out } = await admin().run('setup', '--dry-run');
    expect(out).toContain('create-subscription [ooo-reroute]: no Subscription sends new thread messages to ooo-reroute: one on Communication?part-of:missing=false&status=in-progress (create only)');
  });

  test("a Bot's cron and timeout set by hand are kept; a changed secret or --reset-bot-settings applies; the plan says which", async () => {
    const a = admin();
    await a.run('setup');
    const id = a.ids()['stale-thread-reminders'];
    await a.server.update({ ...(await a.server.read<Bot>('Bot', id)), cronString: '*/15 * * * *', timeout: 120 });

    const kept = await a.run('setup');
    expect(kept.out).toContain(`kept [stale-thread-reminders]: Bot/${id} cronString "*/15 * * * *" was set by hand: kept (STALE_THREAD_CRON says "0 * * * *"`);
    expect(kept.out).toContain(`Bot/${id} timeout 120 was set by hand: kept (BOT_TIMEOUT_SECONDS says 60`);
    expect(await a.server.read<Bot>('Bot', id)).toMatchObject({ cronString: '*/15 * * * *', timeout: 120 });

    const { project } = await a.server.medplum.get(`admin/projects/${PROJECT}`);
    await a.server.medplum.post(
      `admin/projects/${PROJECT}/secrets`,
      project.secret.map((s: { name: string; valueString: string }) => (s.name === 'STALE_THREAD_CRON' ? { ...s, valueString: '30 * * * *' } : s))
    );
    const changed = await a.run('setup');
    expect(changed.out).toContain('cronString (STALE_THREAD_CRON changed since the last setup)');
    expect(await a.server.read<Bot>('Bot', id)).toMatchObject({ cronString: '30 * * * *', timeout: 120 });

    await a.run('setup', '--reset-bot-settings');
    expect(await a.server.read<Bot>('Bot', id)).toMatchObject({ cronString: '30 * * * *', timeout: 60 });
  });

  test('placeholder ids and existing Bots of the same names: setup names them and stops; --adopt takes them and writes their ids', async () => {
    const a = admin();
    const ooo = await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute' });
    const stale = await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'stale-thread-reminders' });
    await a.server.medplum.post(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute-old' });
    a.server.resetCounts();

    const stopped = await a.run('setup');
    expect(stopped.code).toBe(1);
    expect(stopped.err).toContain(`"ooo-reroute": the Project has Bot/${ooo.id}, which setup did not create: run again with --adopt`);
    expect(writes(a.server)).toEqual([]);
    expect(a.ids()['ooo-reroute']).toBe(PLACEHOLDER_BOT_ID);

    const adopted = await a.run('setup', '--adopt');
    expect(adopted.code).toBe(0);
    expect(a.ids()).toEqual({ 'ooo-reroute': ooo.id, 'stale-thread-reminders': stale.id });
    expect(adopted.out).toContain(`adopt-bot [ooo-reroute]: Bot/${ooo.id} is taken over (--adopt)`);
    expect((await a.server.searchAll<Bot>('Bot')).map((b) => b.name).sort()).toEqual(['ooo-reroute', 'ooo-reroute-old', 'stale-thread-reminders']);
    expect((await a.run('status')).out).not.toContain('no Bot id in the config');
  });

  test('--adopt takes over the Bots of an older setup with their Subscription and policy: no second Subscription', async () => {
    const a = admin();
    // What the previous version of setup left: untagged Bots, an untagged Subscription and policy.
    const oldPolicy = await a.server.seed<AccessPolicy>({ resourceType: 'AccessPolicy', name: 'ooo-reroute bot', resource: [{ resourceType: 'Task' }] });
    const ooo = await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute', accessPolicy: { reference: `AccessPolicy/${oldPolicy.id}` } });
    await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'stale-thread-reminders' });
    const old = await a.server.seed<Subscription>({
      resourceType: 'Subscription',
      status: 'active',
      reason: 'older setup',
      criteria: 'Communication?part-of:missing=false&status=in-progress',
      channel: { type: 'rest-hook', endpoint: `Bot/${ooo.id}` },
    });
    const { code, out } = await a.run('setup', '--adopt');
    expect(code).toBe(0);
    expect(out).toContain(`update-subscription [ooo-reroute]: Subscription/${old.id} is taken over (--adopt)`);
    expect(out).toContain(`attach-policy [ooo-reroute]: the Bot's ProjectMembership uses AccessPolicy/${oldPolicy.id}, which setup did not create; replaced by ours (--adopt)`);
    const subscriptions = await a.server.searchAll<Subscription>('Subscription');
    expect(subscriptions.map((s) => s.id)).toEqual([old.id]);
    const [membership] = await a.server.searchAll<ProjectMembership>('ProjectMembership', `profile=Bot/${ooo.id}`);
    expect(membership.accessPolicy?.reference).not.toBe(`AccessPolicy/${oldPolicy.id}`);
    const problems = (await a.run('status')).out.split('Problems:\n')[1]?.split('\n') ?? [];
    expect(problems).toEqual(['- ooo-reroute: never deployed (run `npm run deploy`)', '- stale-thread-reminders: never deployed (run `npm run deploy`)']);
    expect((await a.run('setup')).out).toContain('Nothing to change');
  });

  test('a Bot in the config that setup did not create is left alone without --adopt', async () => {
    const a = admin();
    const bot = await a.server.medplum.post<Bot>(`admin/projects/${PROJECT}/bot`, { name: 'ooo-reroute' });
    await a.server.update({ ...(await a.server.read<Bot>('Bot', bot.id as string)), cronString: '5 * * * *' });
    a.files.set('medplum.config.json', JSON.stringify({ bots: baseConfig.bots.map((b) => (b.name === 'ooo-reroute' ? { ...b, id: bot.id } : b)) }));
    const { out } = await a.run('setup');
    expect(out).toContain(`kept [ooo-reroute]: Bot/${bot.id} was not created by setup`);
    expect((await a.server.read<Bot>('Bot', bot.id as string)).cronString).toBe('5 * * * *');
  });

  test('two Bots of the same name: setup stops rather than guess', async () => {
    const a = admin();
    await a.server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
    await a.server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
    const { code, err } = await a.run('setup', '--adopt');
    expect(code).toBe(1);
    expect(err).toContain('several Bots are named "ooo-reroute"');
  });

  test('an untagged Subscription to our Bot is named and left alone; --adopt takes it over', async () => {
    const a = admin();
    await a.run('setup');
    const [ours] = await a.server.searchAll<Subscription>('Subscription');
    await a.server.update({ ...ours, meta: { ...ours.meta, tag: [] }, reason: 'made by hand' });
    const { out } = await a.run('setup');
    expect(out).toContain(`Subscription/${ours.id} sends new messages to the bot but setup did not create it: left as is`);
    expect(await a.server.searchAll<Subscription>('Subscription')).toHaveLength(1);
    await a.run('setup', '--adopt');
    expect((await a.server.read<Subscription>('Subscription', ours.id as string)).meta?.tag).toContainEqual({ system: TAG, code: 'ooo-reroute' });
  });
});

describe('the dry run', () => {
  test('without credentials: the plan for an empty Project, nothing sent', async () => {
    const files = new Map([['medplum.config.json', JSON.stringify(baseConfig)]]);
    const out: string[] = [];
    // An empty environment: neither the process's variables nor a developer's .env are read.
    const code = await main(['setup', '--dry-run'], {
      out: (l) => out.push(l),
      err: (l) => out.push(l),
      readFile: (p) => files.get(p) as string,
      fileSize: (p) => files.get(p)?.length,
      env: {},
    });
    expect(code).toBe(0);
    expect(out.join('\n').split('\n').map((l) => l.split(':')[0])).toEqual([
      'No credentials',
      'set-secrets',
      'create-policy [ooo-reroute]',
      'create-bot [ooo-reroute]',
      'create-subscription [ooo-reroute]',
      'create-policy [stale-thread-reminders]',
      'create-bot [stale-thread-reminders]',
      '6 change(s); nothing written (dry run).',
    ]);
  });

  test('it validates STALE_RULES and BUSINESS_HOURS and prints the parsed rules, never their text', async () => {
    const a = admin();
    await a.setSecrets({
      STALE_RULES: JSON.stringify([{ category: 'http://x|billing', afterHours: 48 }, { priority: 'urgent', afterHours: 4, reminderPriority: 'asap' }]),
      BUSINESS_HOURS: JSON.stringify({ timeZone: 'America/New_York', hours: { mon: [['08:00', '17:00']] }, closed: ['2026-12-25'] }),
    });
    const { out } = await a.run('setup', '--dry-run');
    expect(out).toContain('BUSINESS_HOURS: open hours in America/New_York, 1 closed date(s)');
    expect(out).toContain('STALE_RULES: 2 rule(s), first match wins:');
    expect(out).toContain('  rule 1 (category http://x|billing): after 48 business hours, escalate every 24, reminder urgent');
    expect(out).toContain('  rule 2 (priority urgent): after 4 business hours, escalate every 24, reminder asap');

    await a.setSecrets({ STALE_RULES: '[{"afterHours": 0}]', BUSINESS_HOURS: '{"timeZone":"Eastern","hours":{}}' });
    const bad = await a.run('setup', '--dry-run');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(
      'Problem: secret STALE_RULES: rule 1: afterHours must be a positive number of hours. The bot ignores it and uses: the default rule only. Fix: npm run settings -- set STALE_RULES=<value>'
    );
    expect(bad.err).toContain('Problem: secret BUSINESS_HOURS: timeZone "Eastern" is not an IANA time zone');
    for (const text of [bad.out, bad.err]) {
      expect(text).not.toContain('Eastern"}');
    }
  });
});

describe('strict arguments: exit 2 before any request', () => {
  test.each<[string[], number, string]>([
    [['setup', '--help'], 0, 'Usage: npm run setup'],
    [['deploy', '--help'], 0, 'Usage: npm run deploy'],
    [['status', '--help'], 0, 'Usage: npm run status'],
    [['setup', '--dryrun'], 2, "Unknown option '--dryrun'"],
    [['setup', '--env'], 2, "Option '--env <value>' argument missing"],
    [['setup', '--env', '--dry-run'], 2, "Option '--env' argument is ambiguous"],
    [['setup', '--env', '../x'], 2, '--env takes a name'],
    [['setup', '--runtime', 'lambda'], 2, '--runtime must be vmcontext or awslambda'],
    [['deploy', '--dry-run'], 2, "Unknown option '--dry-run'"],
    [['status', 'now'], 2, "Unexpected argument 'now'"],
    [['launch'], 2, 'usage: npm run (setup|deploy|status|settings|example)'],
    [['setup', '--env', 'staging'], 1, 'medplum.staging.config.json not found: --env staging reads medplum.staging.config.json. Make it with: cp medplum.config.json medplum.staging.config.json'],
  ])('%j', async (argv, code, message) => {
    const a = admin();
    const run = await a.run(...argv);
    expect(run.code).toBe(code);
    expect(`${run.out}${run.err}`).toContain(message);
    expect(a.server.count()).toBe(0);
  });
});

test('deploy through the command: checks first, then deploys each bot, naming the server', async () => {
  const a = admin();
  await a.run('setup');
  const out: string[] = [];
  let builds = 0;
  const io = deployIo(a, out, () => {
    builds++;
    return true;
  });
  expect(await main(['deploy', '--help'], io)).toBe(0);
  expect(builds).toBe(0); // --help does nothing else, not even a build
  out.length = 0;
  expect(await main(['deploy'], io)).toBe(0);
  expect(builds).toBe(1);
  expect(out[0]).toBe('Deploying to http://localhost:8103/ (Project 123):');
  expect(out.slice(1)).toEqual([expect.stringMatching(/^deployed ooo-reroute \(Bot\/.*\): .*All OK$/), expect.stringMatching(/^deployed stale-thread-reminders/)]);
  const missing: string[] = [];
  expect(await main(['deploy'], { ...io, out: (l) => missing.push(l), err: (l) => missing.push(l), env: {} })).toBe(1);
  expect(missing.join('\n')).toContain('MEDPLUM_CLIENT_ID is not set');
  const failed: string[] = [];
  expect(await main(['deploy'], { ...io, err: (l) => failed.push(l), build: () => false })).toBe(1);
  expect(failed).toEqual(['the build failed (see above); nothing deployed']);
});
