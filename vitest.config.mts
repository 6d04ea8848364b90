// Vitest for `npm test`: the defaults, minus Stryker's sandbox (a copy of the project that
// `npm run test:mutation` keeps in .stryker-tmp while it runs, or after it is interrupted).
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    exclude: [...configDefaults.exclude, '.stryker-tmp/**'],
  },
});
