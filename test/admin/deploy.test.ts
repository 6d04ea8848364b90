import { describe, expect, test } from 'vitest';
import { cliDeploySucceeded, deployProblems } from '../../src/admin/deploy';
import { PLACEHOLDER_BOT_ID } from '../../src/admin/project-setup';

const bot = { name: 'ooo-reroute', id: '8d3b7c2e-0000-4000-8000-000000000001', source: 'src/ooo-reroute.ts', dist: 'dist/ooo-reroute.js' };
const env = { MEDPLUM_CLIENT_ID: 'id', MEDPLUM_CLIENT_SECRET: 'secret' };
const sizes = (size: number | undefined) => () => size;

describe('npm run deploy refuses', () => {
  test.each([
    ['no client id', { ...env, MEDPLUM_CLIENT_ID: undefined }, bot, 100, 'MEDPLUM_CLIENT_ID is not set'],
    ['no client secret', { ...env, MEDPLUM_CLIENT_SECRET: '' }, bot, 100, 'MEDPLUM_CLIENT_SECRET is not set'],
    ['the placeholder Bot id', env, { ...bot, id: PLACEHOLDER_BOT_ID }, 100, 'no real Bot id in medplum.config.json'],
    ['a missing dist file', env, bot, undefined, 'dist/ooo-reroute.js does not exist'],
    ['an empty dist file', env, bot, 0, 'dist/ooo-reroute.js is empty'],
  ])('%s', (_name, environment, config, size, message) => {
    const problems = deployProblems(environment, 'medplum.config.json', [config], sizes(size));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  test('nothing when everything is in place', () => {
    expect(deployProblems(env, 'medplum.config.json', [bot], sizes(100))).toEqual([]);
  });

  test("the Medplum CLI's output is read, not only its exit code", () => {
    const ok = 'Saving source code...\nDeploy result: All OK\nNumber of bots deployed: 1\nNumber of errors: 0';
    expect(cliDeploySucceeded(0, ok)).toBe(true);
    // The CLI exits 0 and claims success when the dist file is missing: nothing was deployed.
    expect(cliDeploySucceeded(0, 'Success! New bot version: 1\nNumber of bots deployed: 1\nNumber of errors: 0')).toBe(false);
    expect(cliDeploySucceeded(1, ok)).toBe(false);
  });
});
