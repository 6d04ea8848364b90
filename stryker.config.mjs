// `npm run test:mutation`: Stryker with the vitest runner over src/ outside src/admin.
// - Only the tests that cover a mutant run for it (perTest), and reruns are incremental
//   (reports/stryker-incremental.json: only changed code and tests are tested again).
// - The bundle tests run dist/, which Stryker does not rebuild per mutant: vitest.mutation.config.mts
//   leaves them out (and one 10,000-thread world).
// - Static mutants (module-level constants) are not run: each would rerun the whole suite, about
//   30 s a mutant on two cores, for constants whose uses the other mutants already test.
// - tsconfigFile names no file on purpose: Stryker's tsconfig rewriting calls the TypeScript JS API,
//   which TypeScript 7 (the native compiler this project uses) does not have; Stryker skips the rewrite
//   when the file does not exist, and this project's tsconfig has no references to rewrite anyway.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.mts', related: false },
  mutate: ['src/**/*.ts', '!src/admin/**'],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  concurrency: 2,
  timeoutMS: 10000,
  thresholds: { high: 95, low: 90, break: null },
  tempDirName: '.stryker-tmp',
  tsconfigFile: 'no-tsconfig-rewrite.json',
};
