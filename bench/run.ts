/**
 * `npm run bench`: the workloads of shared/bench/README.md that ptcluster supports, one JSON line
 * each, in the anchors' schema, so figures compare side by side with ipyparallel, Dask and piscina.
 *
 *   npm run bench                 # all workloads, 2 engines
 *   npm run bench -- latency      # only workloads whose name contains "latency"
 */
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect, type Client } from "@ptcluster/client";
import { PACKAGE_VERSION, pidAlive } from "@ptcluster/protocol";

const SYSTEM = `ptcluster-${PACKAGE_VERSION}`;
const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));
const ENGINES = Number(process.env["BENCH_ENGINES"] ?? 2);
const filter = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), "ptc-bench-"));
const env = { PTCLUSTER_DIR: dir };
process.env["PTCLUSTER_DIR"] = dir;

function out(workload: string, fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ system: SYSTEM, workload, ...fields })}\n`);
}
const want = (name: string) => !filter || name.includes(filter);
const noop = (x?: unknown) => x;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;

async function main(): Promise<void> {
  // startup: from the start command until a client sees all engines.
  const t0 = performance.now();
  const started = await execa(process.execPath, [BIN, "start", "--json", "-n", String(ENGINES)], { env });
  const { enginePids, controllerPid } = JSON.parse(started.stdout) as { enginePids: number[]; controllerPid: number };
  const rc: Client = await connect();
  await rc.waitForEngines(ENGINES, { timeout: 30_000 });
  const startup = (performance.now() - t0) / 1000;
  if (want("startup")) out("startup", { engines: ENGINES, seconds: round(startup) });

  const e0 = rc.engine(rc.ids[0] as number);
  if (want("latency_apply_sync")) {
    for (let i = 0; i < 20; i++) await e0.applySync(noop, 1);
    const lat: number[] = [];
    for (let i = 0; i < 500; i++) {
      const s = performance.now();
      const r = await e0.applySync(noop, 1);
      lat.push((performance.now() - s) * 1000);
      if (r !== 1) throw new Error(`wrong result ${String(r)}`);
    }
    lat.sort((a, b) => a - b);
    out("latency_apply_sync", { calls: 500, median_us: Math.round(quantile(lat, 0.5)), p99_us: Math.round(quantile(lat, 0.99)) });
  }

  if (want("direct_broadcast_apply_sync")) {
    const dv = rc.view();
    for (let i = 0; i < 20; i++) await dv.applySync(noop, 1);
    const s = performance.now();
    for (let i = 0; i < 200; i++) {
      const r = await dv.applySync(noop, 1);
      if (r.length !== ENGINES) throw new Error("missing results");
    }
    out("direct_broadcast_apply_sync", { calls: 200, engines: ENGINES, us_per_call: Math.round(((performance.now() - s) * 1000) / 200) });
  }

  if (want("push_pull_50MB")) {
    const payload = randomBytes(50 * 1024 * 1024);
    await e0.push({ warm: payload.subarray(0, 1024 * 1024) });
    const s = performance.now();
    await e0.push({ blob: payload });
    const back = (await e0.pull("blob")) as Uint8Array;
    const dt = (performance.now() - s) / 1000;
    if (!Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(payload)) throw new Error("50MB round trip corrupted");
    await e0.execute("delete globalThis.blob; delete globalThis.warm");
    out("push_pull_50MB", { mb: 50, mb_per_s_roundtrip: Math.round(100 / dt), seconds: round(dt) });
  }

  await rc.close();
  // stop: from the stop command until every process has exited.
  const pids = [controllerPid, ...enginePids];
  const s = performance.now();
  await execa(process.execPath, [BIN, "stop"], { env });
  while (pids.some(pidAlive)) await new Promise((r) => setTimeout(r, 2));
  if (want("stop")) out("stop", { seconds: round((performance.now() - s) / 1000) });
}

try {
  await main();
} finally {
  await execa(process.execPath, [BIN, "stop", "--all"], { env, reject: false });
  rmSync(dir, { recursive: true, force: true });
}
