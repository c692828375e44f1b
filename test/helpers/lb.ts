import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, ptcluster } from "./cluster.js";
import { processesUsing, waitExited } from "./wait.js";

/** What `p` settles to: its value, or the error it rejects with. */
export function settled(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => v,
    (e: unknown) => e,
  );
}

/** The rejection (or synchronous throw) of `f`, which must fail. */
export async function failure(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure, but it succeeded");
}

/** A fresh scratch directory for files that tasks write (markers, gates, attempt logs). */
export function scratchDir(under: string = tmpdir(), prefix = "work-"): string {
  return mkdtempSync(join(under, prefix));
}

/** Lines of a file (empty lines dropped), or [] when it does not exist. */
export function lines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean);
}

/** Names in `dir` that start with `prefix`, sorted. */
export function filesStartingWith(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .sort();
}

/** A generator of 0..n-1 (n = Infinity: endless) that counts what was pulled and notes whether its `finally` ran. */
export function countingGenerator(n: number): {
  gen: Generator<number>;
  stats: { pulled: number; finished: boolean; closed: boolean };
} {
  const stats = { pulled: 0, finished: false, closed: false };
  function* gen(): Generator<number> {
    try {
      for (let i = 0; i < n; i++) {
        stats.pulled++;
        yield i;
      }
      stats.finished = true;
    } finally {
      stats.closed = true;
    }
  }
  return { gen: gen(), stats };
}

/** The async counterpart of {@link countingGenerator}; each item is produced after a macrotask. */
export function countingAsyncGenerator(n: number): {
  gen: AsyncGenerator<number>;
  stats: { pulled: number; finished: boolean; closed: boolean };
} {
  const stats = { pulled: 0, finished: false, closed: false };
  async function* gen(): AsyncGenerator<number> {
    try {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setImmediate(r));
        stats.pulled++;
        yield i;
      }
      stats.finished = true;
    } finally {
      stats.closed = true;
    }
  }
  return { gen: gen(), stats };
}

/**
 * Runs on an engine: writes `${tag}.started` (its engine id), then waits until the file `gate`
 * exists (returns "opened") or its own `engine.signal` aborts (writes `${tag}.cancelled`, returns
 * "cancelled"). Throws after 20 s so a broken test cannot hang an engine for ever.
 */
export const gatedTask = async (gate: string, tag: string): Promise<string> => {
  const fs = require("node:fs") as typeof import("node:fs");
  fs.writeFileSync(`${tag}.started`, String(engine.id));
  const until = Date.now() + 20_000;
  while (!fs.existsSync(gate)) {
    if (engine.signal?.aborted) {
      fs.writeFileSync(`${tag}.cancelled`, String(engine.id));
      return "cancelled";
    }
    if (Date.now() > until) throw new Error(`gate ${gate} never opened`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return "opened";
};

// Found on the engines through `scope: { wd }`; declared for the type checker only.
declare const wd: string;

/**
 * Runs on an engine, with `scope: { wd }`: items up to 0 return at once; items 1 and 2 hold their
 * engine until cancelled (marking `busy-i`, then `cleanup-i`, in `wd`); the others mark `ran-i`.
 */
export const holdUntilCancelled = async (i: number): Promise<number> => {
  const fs = require("node:fs") as typeof import("node:fs");
  if (i <= 0) return i;
  if (i <= 2) {
    fs.writeFileSync(`${wd}/busy-${i}`, String(engine.id));
    const until = Date.now() + 20_000;
    while (!engine.signal?.aborted) {
      if (Date.now() > until) throw new Error("never cancelled");
      await new Promise((r) => setTimeout(r, 5));
    }
    fs.writeFileSync(`${wd}/cleanup-${i}`, String(engine.id));
    return -2;
  }
  fs.writeFileSync(`${wd}/ran-${i}`, String(engine.id));
  return i;
};

/** Runs on an engine after every task sent to it before: names of files in `dir` starting with `prefix`. */
export const probeFiles = (dir: string, prefix: string): string[] => {
  const fs = require("node:fs") as typeof import("node:fs");
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(prefix))
    .sort();
};

/** Runs on an engine: writes the file `marker` (its engine id) and returns the engine id. */
export const markerTask = (marker: string): number => {
  const fs = require("node:fs") as typeof import("node:fs");
  fs.writeFileSync(marker, String(engine.id));
  return engine.id;
};

/** Engine id written in `${tag}.started` once a {@link gatedTask} runs. */
export function startedOn(tag: string): number | undefined {
  const f = `${tag}.started`;
  return existsSync(f) ? Number(readFileSync(f, "utf8")) : undefined;
}

/** `ptcluster engine --profile P` as a child process under `dir`: an engine that joins a running cluster. */
export function spawnEngine(
  dir: string,
  profile: string,
): { child: ChildProcess; stop: () => Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [BIN, "engine", "--profile", profile], {
    env: { ...process.env, PTCLUSTER_DIR: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  return {
    child,
    output: () => out,
    stop: async () => {
      const pid = child.pid;
      if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      let left = await waitExited([pid], 2_000);
      if (left.length) {
        child.kill("SIGTERM");
        left = await waitExited([pid], 2_000);
      }
      if (left.length) {
        child.kill("SIGKILL");
        await waitExited([pid], 2_000);
        throw new Error(`the extra engine (pid ${pid}) did not stop with its cluster; it was killed`);
      }
    },
  };
}

/**
 * The processes still running under `dir` (should be none once every cluster was stopped). If there
 * are any (a fixture failed half-way), they are stopped too — `ptcluster stop --all`, then SIGKILL by
 * pid — so one failing file does not leave processes behind; the caller asserts the list is empty.
 */
export async function reapLeftovers(dir: string): Promise<Array<{ pid: number; cmdline: string }>> {
  const left = processesUsing(dir);
  if (left.length === 0) return left;
  await ptcluster(dir, ["stop", "--all"], { timeout: 10_000 });
  for (const p of processesUsing(dir)) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await waitExited(
    left.map((p) => p.pid),
    2_000,
  );
  return left;
}
