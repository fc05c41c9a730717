import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // PGlite instances take ~700 MB and several seconds to start: few workers, generous timeouts.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    // One migrated PGlite database per run, which openPglite copies (a new one costs seconds).
    globalSetup: ['./test/support/pglite.ts'],
  },
});
