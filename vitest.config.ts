import { defineConfig } from 'vitest/config'

// Two projects: fast unit tests beside the code, and integration/e2e tests that start
// real PostgreSQL, Redis, Airflow and AWS clients. Integration files run one at a time
// (they share one built Airflow runtime and the machine has 2 cores).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          pool: 'forks',
        },
      },
    ],
  },
})
