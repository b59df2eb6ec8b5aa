import { defineConfig } from 'vitest/config'

// Three tiers (docs/architecture.md, tests): unit is pure and fast; integration talks to a real
// ZooKeeper started by test/support; e2e runs the built CLI as processes. Security tests
// (docs/security.md) are integration tests grouped by attack.
export default defineConfig({
  test: {
    // Integration and e2e files share one machine (2 cores) and its ZooKeeper processes:
    // one file at a time keeps timing-sensitive fault tests honest.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000
        }
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          // One file per attack area (docs/security.md): real ZooKeeper, real sockets, and the
          // built CLI where a start-up error is the point.
          name: 'security',
          include: ['test/security/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 90_000,
          hookTimeout: 60_000
        }
      }
    ]
  }
})
