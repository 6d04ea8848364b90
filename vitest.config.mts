// Vitest for `npm test`: the defaults, minus the browser tests and Stryker's sandbox (a copy of the project that
// `npm run test:mutation` keeps in .stryker-tmp while it runs, or after it is interrupted).
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Browser tests need Chromium: `npm run test:browser` runs them (and .ci/run).
    exclude: [...configDefaults.exclude, '.stryker-tmp/**', 'test/browser/**'],
    // A file's first test also loads @medplum/core and the FHIR definitions: on a busy two-core
    // machine that alone can pass the default 5 s. No test asserts on time.
    testTimeout: 30_000,
  },
});
