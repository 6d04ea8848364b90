// Vitest for `npm run test:browser`: the tests that drive a real browser (Debian's Chromium).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.test.ts'],
  },
});
