// The GitHub workflows a clinic copies: checked as text, since they only run on GitHub.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';

test('deploy: least permissions, a reviewable environment, no forks, a required server, status after the deploy', () => {
  const deploy = readFileSync('.github/workflows/deploy.yml', 'utf8');
  expect(deploy).toContain('permissions:\n  contents: read');
  expect(deploy).toContain('environment: production');
  expect(deploy).toContain('if: ${{ !github.event.repository.fork }}');
  expect(deploy).toContain('MEDPLUM_BASE_URL: ${{ vars.MEDPLUM_BASE_URL }}');
  expect(deploy).not.toContain('api.medplum.com/\n'); // no default server baked in
  expect(deploy).toMatch(/if \[ -z "\$\{\{ vars\.MEDPLUM_BASE_URL \}\}" \]; then[\s\S]*exit 1/);
  expect(deploy.indexOf('run: npm run status')).toBeGreaterThan(deploy.indexOf('run: npm run deploy'));
  expect(deploy.indexOf('run: npm test')).toBeLessThan(deploy.indexOf('run: npm run deploy'));
});

test('test: pull requests run the README commands, read-only', () => {
  const workflow = readFileSync('.github/workflows/test.yml', 'utf8');
  expect(workflow).toContain('permissions:\n  contents: read');
  expect(workflow).toContain('- run: npm ci\n      - run: npm test');
  expect(workflow.indexOf('run: npm run test:browser')).toBeGreaterThan(workflow.indexOf('run: npm test'));
});
