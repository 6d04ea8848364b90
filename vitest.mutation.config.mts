// Vitest settings for `npm run test:mutation` (Stryker) only. The bundle tests run dist/, which
// Stryker does not rebuild for each mutant, so they are left out here; `npm test` runs them.
// MUTATION=1 skips the one world too large to rerun for every mutant (10,000 threads); smaller
// tests cover the same code.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.mts';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: ['test/bundle/**'],
      env: { MUTATION: '1' },
    },
  })
);
