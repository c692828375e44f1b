import { defineConfig } from "vitest/config";

// Two tiers: `unit` (no processes or sockets beyond the test's own, milliseconds each) runs first,
// so a broken module fails in seconds; `integration` starts real clusters.
const shared = {
  // Integration tests start real processes; forks keep each file's environment (PTCLUSTER_DIR) its own.
  pool: "forks" as const,
  testTimeout: 30_000,
  hookTimeout: 30_000,
  // A process warning or an unhandled rejection fails the run.
  setupFiles: ["test/setup/fail-on-warnings.ts"],
};

export default defineConfig({
  test: {
    maxWorkers: 2,
    dangerouslyIgnoreUnhandledErrors: false,
    projects: [
      {
        test: {
          ...shared,
          name: "unit",
          include: ["packages/*/test/**/*.test.ts", "test/unit/**/*.test.ts"],
          typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "test/tsconfig.json" },
        },
      },
      {
        test: {
          ...shared,
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/unit/**"],
        },
      },
    ],
  },
});
