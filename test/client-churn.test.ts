import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { useCluster } from "./helpers/cluster.js";

const fixture = fileURLToPath(new URL("./fixtures/client-churn.mjs", import.meta.url));

describe("clients connected and closed one after another in one process", () => {
  const ctx = useCluster({ n: 1 });

  // zeromq.js names a socket's monitor endpoint after its observer's address; an observer let go
  // before libzmq reaped its socket let a later client's observer take the same name, and
  // connect() failed with EADDRINUSE about once in 40 clients (examples/busy-wait.ts hit it).
  it("every connect succeeds, garbage collected between them", async () => {
    const r = await execa(process.execPath, ["--expose-gc", fixture, "150"], {
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 120_000,
      stdin: "ignore",
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { rounds: number; failures: string[] };
    expect(out).toEqual({ rounds: 150, failures: [] });
  }, 150_000);
});
