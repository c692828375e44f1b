import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { connect, type Client } from "@ptcluster/client";
import { pidAlive } from "@ptcluster/protocol";

/** The CLI entry point, run with this Node. */
export const BIN = fileURLToPath(new URL("../../packages/cli/dist/bin.js", import.meta.url));

/** Runs `ptcluster <args>` in a child process with the given PTCLUSTER_DIR; never rejects. */
export function ptcluster(
  dir: string,
  args: string[],
  options: { timeout?: number; env?: Record<string, string>; input?: string } = {},
) {
  return execa(process.execPath, [BIN, ...args], {
    env: { PTCLUSTER_DIR: dir, ...options.env },
    reject: false,
    timeout: options.timeout ?? 60_000,
    ...(options.input !== undefined ? { input: options.input } : { stdin: "ignore" as const }),
  });
}

/** A fresh PTCLUSTER_DIR, removed by `cleanup`. Also set in this process for `connect()`. */
export function tempClusterDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "ptc-test-"));
  const previous = process.env["PTCLUSTER_DIR"];
  process.env["PTCLUSTER_DIR"] = dir;
  return {
    dir,
    cleanup: () => {
      if (previous === undefined) delete process.env["PTCLUSTER_DIR"];
      else process.env["PTCLUSTER_DIR"] = previous;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestCluster {
  dir: string;
  profile: string;
  clusterId: string;
  ids: number[];
  controllerPid: number;
  enginePids: number[];
  /** Every pid of the cluster (controller and engines). */
  pids(): number[];
  connect(): Promise<Client>;
  /** `ptcluster stop`, then asserts (throws) if any process of the cluster is still alive. */
  stop(): Promise<void>;
}

/**
 * Starts a real cluster with `ptcluster start --json` under `dir`. Dead engines are not replaced
 * unless `restart: true`, so tests that kill engines see a stable set of ids.
 */
export async function startTestCluster(
  dir: string,
  options: {
    n?: number;
    profile?: string;
    clusterId?: string;
    restart?: boolean;
    extra?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<TestCluster> {
  const profile = options.profile ?? "default";
  const clusterId = options.clusterId ?? "";
  const args = ["start", "--json", "-n", String(options.n ?? 2), "--profile", profile];
  if (!options.restart) args.push("--no-restart");
  if (clusterId) args.push("--cluster-id", clusterId);
  if (options.extra) args.push(...options.extra);
  const r = await ptcluster(dir, args, options.env ? { env: options.env } : {});
  if (r.exitCode !== 0) throw new Error(`ptcluster start failed (${r.exitCode}): ${r.stderr}`);
  const s = JSON.parse(r.stdout.trim()) as { ids: number[]; controllerPid: number; enginePids: number[] };
  const tc: TestCluster = {
    dir,
    profile,
    clusterId,
    ids: s.ids,
    controllerPid: s.controllerPid,
    enginePids: s.enginePids,
    pids: () => [s.controllerPid, ...s.enginePids],
    connect: () => connect({ profile, clusterId }),
    stop: async () => {
      const stopArgs = ["stop", "--profile", profile];
      if (clusterId) stopArgs.push("--cluster-id", clusterId);
      const res = await ptcluster(dir, stopArgs);
      if (res.exitCode !== 0) throw new Error(`ptcluster stop failed: ${res.stderr}`);
      await expectGone(tc.pids(), 2_000);
    },
  };
  return tc;
}

/** Waits (polling pids, not sleeping blindly) until every pid has exited; throws naming survivors. */
export async function expectGone(pids: number[], withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  let alive = pids.filter(pidAlive);
  while (alive.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    alive = alive.filter(pidAlive);
  }
  if (alive.length) {
    for (const p of alive) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    throw new Error(`processes still alive after ${withinMs} ms: ${alive.join(", ")}`);
  }
}

/**
 * A real cluster for one test file: started before its tests in a fresh PTCLUSTER_DIR, with a
 * connected client, and stopped afterwards (asserting no process is left).
 *
 * ```ts
 * const ctx = useCluster({ n: 2 });
 * it("…", async () => { await ctx.rc.view().applySync(() => 1); });
 * ```
 */
export function useCluster(options: Parameters<typeof startTestCluster>[1] & { dir?: string } = {}): {
  readonly dir: string;
  cluster: TestCluster;
  rc: Client;
} {
  // With `dir`, several clusters (of different profiles) of one file share a PTCLUSTER_DIR its owner removes.
  const tmp = options.dir === undefined ? tempClusterDir() : { dir: options.dir, cleanup: () => undefined };
  const ctx = { dir: tmp.dir } as { readonly dir: string; cluster: TestCluster; rc: Client };
  beforeAll(async () => {
    ctx.cluster = await startTestCluster(tmp.dir, options);
    ctx.rc = await ctx.cluster.connect();
  });
  afterAll(async () => {
    await ctx.rc?.close();
    await ctx.cluster?.stop();
    tmp.cleanup();
  });
  return ctx;
}
