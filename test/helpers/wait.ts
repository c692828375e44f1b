import { readdirSync, readFileSync } from "node:fs";

/**
 * Polls `probe` until it returns a truthy value (which is returned), or throws after `timeout` ms
 * naming what it waited for. For conditions that have no event to wait on; never a blind sleep.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  options: { timeout?: number; interval?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const timeout = options.timeout ?? 10_000;
  const interval = options.interval ?? 10;
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline)
      throw new Error(`timed out after ${timeout} ms waiting for ${options.what ?? "a condition"}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** One-letter process state from /proc (R, S, D, Z, X, …), or undefined if there is no such process. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).charAt(0);
  } catch {
    return undefined;
  }
}

/**
 * True once `pid` has exited. A zombie (exited, waiting for its parent or init to reap it) counts
 * as exited: it runs no code, holds no socket, and reaping an orphan is init's job, not ptcluster's.
 */
export function processExited(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return true;
  }
  const s = procState(pid);
  return s === undefined || s === "Z" || s === "X";
}

/** Pids (not yet exited) among `pids`. */
export function running(pids: readonly number[]): number[] {
  return pids.filter((p) => !processExited(p));
}

/** Waits (polling) until every pid has exited; resolves with those still running after `timeout` ms. */
export async function waitExited(pids: readonly number[], timeout: number): Promise<number[]> {
  const deadline = Date.now() + timeout;
  let left = running(pids);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    left = running(left);
  }
  return left;
}

/**
 * Live processes (other than this one) whose environment or command line mentions `dir`: every
 * process of a cluster under that PTCLUSTER_DIR (the CLI passes it down through the environment,
 * and engines get connection files under it on their command line). Linux /proc only.
 */
export function processesUsing(dir: string): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || processExited(pid)) continue;
    let environ = "";
    let cmdline = "";
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "latin1");
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1");
    } catch {
      continue;
    }
    if (environ.split("\0").includes(`PTCLUSTER_DIR=${dir}`) || cmdline.includes(dir)) {
      out.push({ pid, cmdline: cmdline.split("\0").join(" ").trim() });
    }
  }
  return out;
}

/** 0, 1, …, n - 1. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Every value of an async iterable, in order. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}
