/**
 * `npm run bench`: the workloads of shared/bench/README.md that ptcluster supports, one JSON line
 * each, in the anchors' schema, so figures compare side by side with ipyparallel, Dask and piscina.
 *
 *   npm run bench                 # all workloads, 2 engines
 *   npm run bench -- latency      # only workloads whose name contains "latency"
 *
 * Workloads, in this order: startup, latency_apply_sync, latency_apply_sync_warm (the same after
 * 2,000 untimed calls), throughput_lb_apply_async, lb_map_noop,
 * direct_broadcast_apply_sync, cpu_map_busy, push_pull_50MB, push_pull_50MB_remote (the engine in
 * another network namespace, shared memory off: bench/remote.ts), lb_50MB_remote (a load-balanced
 * 50 MiB echo to that engine, through the controller), shared_dict_50MB (bench/shared-big.ts), lb_map_1m, the pipeline ones
 * (pipeline_3stage_noop, pipeline_1m_generator, pipeline_intermediate_bytes), the shared-state ones
 * (shared_dict_set, shared_counter_add, shared_queue_throughput, with Python's SyncManager beside
 * them), the engine-to-engine ones (comm_pingpong, comm_allreduce_scalar, comm_allreduce_8MiB,
 * comm_allreduce_8MiB_out: the same into a reused `out`, as mpi4py's recvbuf,
 * with mpi4py beside them; with BENCH_ENGINES above 2, comm_allreduce_scalar_all and
 * comm_allreduce_8MiB_all over every engine), stop. Each checks its results and throws on a wrong one. ipyparallel
 * runs beside latency_apply_sync, direct_broadcast_apply_sync, push_pull_50MB and
 * push_pull_50MB_remote where /usr/bin/python3 imports it (bench/ipp.ts).
 */
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect, type Client } from "@ptcluster/client";
import { PACKAGE_VERSION, pidAlive } from "@ptcluster/protocol";
import { sharedStateWorkloads } from "./shared-state.js";
import { commWorkloads } from "./comm.js";
import { pipelineWorkloads } from "./pipeline.js";
import { measureGrowth } from "./proc.js";
import { ROUNDS, medianEcho, remotePushPull } from "./remote.js";
import { sharedDictBig } from "./shared-big.js";
import { IPP_WORKLOADS, ippOneHost, ippRemote } from "./ipp.js";

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
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const seconds = (since: number) => (performance.now() - since) / 1000;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A count-down loop: CPU-bound work that no engine can do faster than the client. */
function busy(n: number): number {
  let x = n;
  while (x > 0) x--;
  return n;
}

/** `n` for `busy(n)` such that one call takes about `ms` in this process, once optimised. */
function calibrateBusy(ms: number): number {
  const probe = 5e7;
  for (let i = 0; i < 3; i++) busy(probe); // let the JIT optimise the loop first
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    busy(probe);
    best = Math.min(best, performance.now() - s);
  }
  return Math.round((probe * ms) / best);
}

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
  /** Median and p99 of 500 sequential `applySync(noop, 1)` on engine 0 after `warm` untimed ones. */
  const latency = async (warm: number) => {
    for (let i = 0; i < warm; i++) await e0.applySync(noop, 1);
    const lat: number[] = [];
    for (let i = 0; i < 500; i++) {
      const s = performance.now();
      const r = await e0.applySync(noop, 1);
      lat.push((performance.now() - s) * 1000);
      if (r !== 1) throw new Error(`wrong result ${String(r)}`);
    }
    lat.sort((a, b) => a - b);
    return { calls: 500, median_us: Math.round(quantile(lat, 0.5)), p99_us: Math.round(quantile(lat, 0.99)) };
  };
  // The anchors' definition: 20 warm-up calls, so the 500 timed ones run while V8 is still
  // compiling the hot paths of all three processes (client, engine, its executor thread).
  if (want("latency_apply_sync")) out("latency_apply_sync", await latency(20));
  // The same once they are compiled (2,000 more calls: medians fall until about then, here).
  if (want("latency_apply_sync_warm")) out("latency_apply_sync_warm", await latency(2_000));

  const lb = rc.loadBalancedView();

  if (want("throughput_lb_apply_async")) {
    // One untimed round to warm the JIT in every process (the first round runs at about half the
    // steady rate), then the median of three timed rounds of 5,000 tasks issued without waiting.
    const tasks = 5_000;
    const times: number[] = [];
    for (let run = 0; run < 4; run++) {
      const s = performance.now();
      const pending = [];
      for (let i = 0; i < tasks; i++) pending.push(lb.apply(noop, i));
      const results = await Promise.all(pending);
      const dt = seconds(s);
      results.forEach((v, i) => {
        if (v !== i) throw new Error(`throughput_lb_apply_async: task ${i} returned ${String(v)}`);
      });
      if (run > 0) times.push(dt);
    }
    const dt = median(times);
    out("throughput_lb_apply_async", { tasks, tasks_per_s: Math.round(tasks / dt), seconds: round(dt) });
  }

  if (want("lb_map_noop")) {
    // One warm-up map, then the median of five timed ones (default chunking, results in order).
    const items = range(5_000);
    const times: number[] = [];
    for (let run = 0; run < 6; run++) {
      const s = performance.now();
      const results = await lb.map(noop, items);
      const dt = seconds(s);
      if (results.length !== items.length || results.some((v, i) => v !== i))
        throw new Error("lb_map_noop: results out of order or wrong");
      if (run > 0) times.push(dt);
    }
    const dt = median(times);
    out("lb_map_noop", { items: items.length, items_per_s: Math.round(items.length / dt), seconds: round(dt) });
  }

  if (want("direct_broadcast_apply_sync")) {
    const dv = rc.view();
    for (let i = 0; i < 20; i++) await dv.applySync(noop, 1);
    const s = performance.now();
    for (let i = 0; i < 200; i++) {
      const r = await dv.applySync(noop, 1);
      if (r.length !== ENGINES) throw new Error("missing results");
    }
    out("direct_broadcast_apply_sync", {
      calls: 200,
      engines: ENGINES,
      us_per_call: Math.round(((performance.now() - s) * 1000) / 200),
    });
  }

  if (want("cpu_map_busy")) {
    // n such that one item takes ~100 ms (the anchors' range is 50–150 ms); the engine compiles
    // the same source, so one item costs about the same there.
    const n = calibrateBusy(100);
    const items = Array<number>(8).fill(n);
    // Warm up both sides the same way (ships and compiles `busy` on every engine), then time each
    // side twice and keep the better run of each: this machine is shared and noisy.
    items.slice(0, 2).map(busy);
    await lb.map(busy, items.slice(0, 2 * ENGINES), { chunkSize: 1 });
    let serialS = Infinity;
    let parallelS = Infinity;
    for (let run = 0; run < 2; run++) {
      let s = performance.now();
      const serial = items.map(busy);
      serialS = Math.min(serialS, seconds(s));
      s = performance.now();
      const parallel = await lb.map(busy, items);
      parallelS = Math.min(parallelS, seconds(s));
      if (serial.some((v) => v !== n) || parallel.length !== items.length || parallel.some((v) => v !== n))
        throw new Error("cpu_map_busy: wrong results");
    }
    const speedup = serialS / parallelS;
    out("cpu_map_busy", {
      items: items.length,
      engines: ENGINES,
      serial_s: round(serialS),
      parallel_s: round(parallelS),
      speedup: round(speedup, 2),
      efficiency: round(speedup / ENGINES, 2),
    });
  }

  if (want("push_pull_50MB")) {
    const payload = randomBytes(50 * 1024 * 1024);
    await e0.push({ warm: payload.subarray(0, 1024 * 1024) });
    const dt = await medianEcho(payload, "50MB round trip", async () => {
      await e0.push({ blob: payload });
      return e0.pull("blob");
    });
    await e0.execute("delete globalThis.blob; delete globalThis.warm");
    out("push_pull_50MB", { mb: 50, mb_per_s_roundtrip: Math.round(100 / dt), seconds: round(dt), rounds: ROUNDS });
  }
  // ipyparallel side by side (bench/ipp.ts), where /usr/bin/python3 has it: its latency,
  // broadcast and one-host 50 MiB lines, then its remote 50 MiB after ours.
  if (IPP_WORKLOADS.some(want)) await ippOneHost(want);
  if (want("push_pull_50MB_remote") || want("lb_50MB_remote")) await remotePushPull(BIN, env, out);
  if (want("push_pull_50MB_remote")) await ippRemote();
  if (want("shared_dict_50MB")) await sharedDictBig(rc, out);

  if (want("lb_map_1m")) {
    // A map of a million noop items with default options, results checked in order. Memory is
    // growth over the RSS just before the input is built, peaks from the kernel's high-water mark
    // (VmHWM, reset first) of the controller and of this process; where /proc does not allow the
    // reset, from samples (which miss peaks while the client's event loop is busy).
    const items = 1_000_000;
    const s = performance.now();
    const m = await measureGrowth(controllerPid, () => lb.map(noop, range(items)));
    const results = m.value;
    const dt = seconds(s);
    if (results.length !== items) throw new Error(`lb_map_1m: ${results.length} results`);
    for (let i = 0; i < items; i++)
      if (results[i] !== i) throw new Error(`lb_map_1m: item ${i} returned ${String(results[i])}`);
    const fields: Record<string, unknown> = {
      items,
      items_per_s: Math.round(items / dt),
      seconds: round(dt),
      hub_peak_rss_mb: Math.round(m.otherPeakMb),
      client_rss_growth_mb: Math.round(m.clientGrowthMb),
    };
    if (m.otherGrowthMb !== undefined) fields["hub_rss_growth_mb"] = Math.round(m.otherGrowthMb);
    out("lb_map_1m", fields);
  }

  await pipelineWorkloads(rc, controllerPid, want, out);
  await sharedStateWorkloads(rc, want, out);
  await commWorkloads(rc, want, out);

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
