import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    // Integration tests start real processes; forks keep each file's environment (PTCLUSTER_DIR) its own.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // A process warning or an unhandled rejection fails the run.
    dangerouslyIgnoreUnhandledErrors: false,
    setupFiles: ["test/setup/fail-on-warnings.ts"],
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "test/tsconfig.json" },
  },
});
