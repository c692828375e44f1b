/**
 * `push_pull_50MB_remote`: the 50 MiB round trip of `push_pull_50MB` with the engine in another
 * network namespace (a "host" on a bridge, as test/remote.test.ts makes them) and shared memory
 * off (`--shm-threshold-kb 0`: namespaces share /dev/shm, so the engine would otherwise find the
 * controller's host token), so every byte crosses TCP; then `lb_50MB_remote`, a load-balanced
 * task whose 50 MiB argument comes back as its result, through the controller. Needs root and iproute2; otherwise it
 * prints a skip line with the reason.
 */
import { execa } from "execa";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { connect, type Client } from "@ptcluster/client";
import { profilePaths } from "@ptcluster/protocol";
import { createTestNet, netnsUnavailable } from "../test/helpers/netns.js";

const PROFILE = "bench_remote";

/**
 * Runs `body` with a client of a cluster whose one engine is in another network namespace, its
 * controller on the bridge, shared memory off; everything is stopped and removed after.
 */
export async function withRemoteEngine(
  bin: string,
  env: Record<string, string>,
  profile: string,
  body: (rc: Client) => Promise<void>,
): Promise<void> {
  const net = createTestNet(1);
  const fileDir = mkdtempSync(join(tmpdir(), "ptc-bench-remote-"));
  let engine: ReturnType<typeof net.run> | undefined;
  try {
    const start = ["start", "--json", "-n", "0", "--profile", profile, "--ip", net.controllerIp];
    await execa(process.execPath, [bin, ...start, "--no-encryption", "--shm-threshold-kb", "0"], { env });
    const file = join(fileDir, "engine.json");
    copyFileSync(profilePaths(profile).engineFile, file);
    engine = net.run(net.hosts[0]!, process.execPath, [bin, "engine", "--file", file], {
      stdin: "ignore",
      reject: false,
    });
    const rc = await connect({ profile });
    await rc.waitForEngines(1, { timeout: 30_000 });
    await body(rc);
    await rc.close();
  } finally {
    await execa(process.execPath, [bin, "stop", "--profile", profile], { env, reject: false });
    await engine;
    await net.destroy();
    rmSync(fileDir, { recursive: true, force: true });
  }
}

/** Seconds `run` took, after checking that what it brought back is `sent`, byte for byte. */
export async function timedEcho(sent: Buffer, what: string, run: () => Promise<unknown>): Promise<number> {
  const s = performance.now();
  const back = (await run()) as Uint8Array;
  const dt = (performance.now() - s) / 1000;
  if (!Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(sent)) throw new Error(`${what} corrupted`);
  return dt;
}

/**
 * The median of `ROUNDS` timed echoes after one untimed one: a fresh engine's first 50 MiB round
 * pays for its memory and compiled code (ipyparallel's anchor, bench/anchors/ipp_push_pull.py,
 * is timed the same way, so the two compare).
 */
export const ROUNDS = 3;
export async function medianEcho(sent: Buffer, what: string, run: () => Promise<unknown>): Promise<number> {
  await timedEcho(sent, what, run);
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) times.push(await timedEcho(sent, what, run));
  return times.sort((a, b) => a - b)[ROUNDS >> 1] as number;
}

export async function remotePushPull(
  bin: string,
  env: Record<string, string>,
  out: (workload: string, fields: Record<string, unknown>) => void,
): Promise<void> {
  const why = netnsUnavailable();
  if (why) {
    out("push_pull_50MB_remote", { skipped: why });
    return;
  }
  await withRemoteEngine(bin, env, PROFILE, async (rc) => {
    const e = rc.engine(rc.ids[0] as number);
    const payload = randomBytes(50 * 1024 * 1024);
    await e.push({ warm: payload.subarray(0, 1024 * 1024) });
    const dt = await medianEcho(payload, "50MB remote round trip", async () => {
      await e.push({ blob: payload });
      return e.pull("blob");
    });
    const fields = (s: number) => ({
      mb: 50,
      mb_per_s_roundtrip: Math.round(100 / s),
      seconds: Math.round(s * 1000) / 1000,
      rounds: ROUNDS,
    });
    out("push_pull_50MB_remote", fields(dt));
    await e.execute("delete globalThis.blob; delete globalThis.warm");
    // The controller path: a load-balanced task's 50 MiB argument and its 50 MiB result each
    // cross two hops (client → controller → engine and back), stored and forwarded whole.
    const lb = rc.loadBalancedView();
    await lb.apply((b: Uint8Array) => b.length, payload.subarray(0, 1024 * 1024));
    const lbS = await medianEcho(payload, "50MB remote load-balanced echo", () =>
      lb.apply((b: Uint8Array) => b, payload),
    );
    out("lb_50MB_remote", fields(lbS));
  });
}
