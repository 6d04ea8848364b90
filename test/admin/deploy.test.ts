import type { Bot } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, test } from 'vitest';
import { deployBot, deployProblems } from '../../src/admin/deploy';
import { PLACEHOLDER_BOT_ID } from '../../src/admin/project-setup';
import { QuotaPacer } from '../../src/sla/quota-pacer';
import { createServerMock, indexDefinitions } from '../harness/server-mock';

beforeAll(() => indexDefinitions(), 60_000); // the FHIR definitions, once, outside any test's time

const bot = { name: 'ooo-reroute', id: '8d3b7c2e-0000-4000-8000-000000000001', source: 'src/ooo-reroute.ts', dist: 'dist/ooo-reroute.js' };
const env = { MEDPLUM_CLIENT_ID: 'id', MEDPLUM_CLIENT_SECRET: 'secret' };
const sizes = (dist: number | undefined, source: number | null = 100) => (path: string) => (path.endsWith('.js') ? dist : (source ?? undefined));

describe('npm run deploy refuses', () => {
  test.each([
    ['no client id', { ...env, MEDPLUM_CLIENT_ID: undefined }, bot, sizes(100), 'MEDPLUM_CLIENT_ID is not set'],
    ['no client secret', { ...env, MEDPLUM_CLIENT_SECRET: '' }, bot, sizes(100), 'MEDPLUM_CLIENT_SECRET is not set'],
    ['the placeholder Bot id', env, { ...bot, id: PLACEHOLDER_BOT_ID }, sizes(100), 'no real Bot id in medplum.config.json'],
    ['a missing dist file', env, bot, sizes(undefined), 'dist/ooo-reroute.js does not exist (run `npm run build`)'],
    ['an empty dist file', env, bot, sizes(0), 'dist/ooo-reroute.js is empty'],
    ['a missing source file', env, bot, sizes(100, null), 'src/ooo-reroute.ts does not exist'],
  ])('%s', (_name, environment, config, size, message) => {
    const problems = deployProblems(environment, 'medplum.config.json', [config], size);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  test('nothing when everything is in place', () => {
    expect(deployProblems(env, 'medplum.config.json', [bot], sizes(100))).toEqual([]);
  });
});

describe('deployBot', () => {
  const files = (path: string): string => (path.endsWith('.js') ? 'exports.handler = async () => 1;' : 'export async function handler() {}');

  test('saves the source, deploys the bundle, reports the server word', async () => {
    const server = createServerMock();
    const target = await server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute', runtimeVersion: 'vmcontext' });
    const result = await deployBot(server.medplum, { ...bot, id: target.id }, files, new QuotaPacer(server.medplum));
    expect(result).toEqual({ bot: 'ooo-reroute', ok: true, message: 'vmcontext: All OK' });
    const deployed = await server.read<Bot>('Bot', target.id);
    expect(deployed.sourceCode?.title).toBe('ooo-reroute.ts');
    expect(deployed.executableCode?.title).toBe('ooo-reroute.js');
  });

  test("a refusal prints the server's reason, not just a count", async () => {
    const server = createServerMock();
    const result = await deployBot(server.medplum, bot, files, new QuotaPacer(server.medplum));
    expect(result).toMatchObject({ ok: false, message: 'Not found' });
  });

  test('a 429 waits for the quota and retries, instead of failing the deploy', async () => {
    const server = createServerMock();
    const target = await server.seed<Bot>({ resourceType: 'Bot', name: 'ooo-reroute' });
    server.faults.push({ match: /\$deploy$/, status: 429, times: 3 });
    const waits: number[] = [];
    const result = await deployBot(server.medplum, { ...bot, id: target.id }, files, new QuotaPacer(server.medplum, { sleep: async () => undefined, onWait: (s) => waits.push(s) }));
    expect(result.ok).toBe(true);
    expect(waits).toHaveLength(1);
  });
});
