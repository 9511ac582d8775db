import { defineConfig } from 'vitest/config'

// Two modes: `unit` needs no services; `integration` gets a real Kafka, Redis and
// ClickHouse from the local-stack globalSetup (started once per run).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['packages/*/{src,test}/**/*.int.test.ts', 'services/*/{src,test}/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          globalSetup: ['packages/local-stack/src/vitest-global-setup.ts'],
          // chDB is a native library that owns its data directory per process: forks, not threads.
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
