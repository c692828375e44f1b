/**
 * The engine-to-engine workloads of `npm run bench` (issue 14), on two engines, and mpi4py over
 * Open MPI measured the same way in the same run (bench/anchors/mpi4py_comm.py), where it exists.
 */
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import type { Client } from "@ptcluster/client";

const ANCHOR = fileURLToPath(new URL("./anchors/mpi4py_comm.py", import.meta.url));

export async function commWorkloads(
  rc: Client,
  want: (name: string) => boolean,
  out: (workload: string, fields: Record<string, unknown>) => void,
): Promise<void> {
  const pair = rc.view(rc.ids.slice(0, 2));
  if (want("comm_pingpong")) {
    // 1,000 round trips between ranks 0 and 1 after 100 warm-up ones, timed on rank 0.
    const [times] = await pair.applySync(async () => {
      const { comm } = engine;
      const lat: number[] = [];
      for (let i = 0; i < 1_100; i++) {
        const s = performance.now();
        if (comm.rank === 0) {
          await comm.send(1, i);
          await comm.recv({ source: 1 });
        } else await comm.send(0, await comm.recv({ source: 0 }));
        if (i >= 100) lat.push((performance.now() - s) * 1000);
      }
      return lat.sort((a, b) => a - b);
    });
    out("comm_pingpong", { calls: 1_000, ranks: 2, median_us: Math.round(times![500]!) });
  }
  if (want("comm_allreduce_scalar")) {
    const [times] = await pair.applySync(async () => {
      const { comm } = engine;
      const lat: number[] = [];
      for (let i = 0; i < 1_100; i++) {
        const s = performance.now();
        const total = await comm.allreduce(comm.rank + i, "sum");
        if (total !== 1 + 2 * i) throw new Error(`allreduce gave ${total}`);
        if (i >= 100) lat.push((performance.now() - s) * 1000);
      }
      return lat.sort((a, b) => a - b);
    });
    out("comm_allreduce_scalar", { calls: 1_000, ranks: 2, median_us: Math.round(times![500]!) });
  }
  if (want("comm_allreduce_8MiB")) {
    const [times] = await pair.applySync(async () => {
      const { comm } = engine;
      const a = new Float64Array(1 << 20).fill(comm.rank + 1);
      const lat: number[] = [];
      for (let i = 0; i < 22; i++) {
        await comm.barrier();
        const s = performance.now();
        const sum = (await comm.allreduce(a, "sum")) as Float64Array;
        if (sum[0] !== 3 || sum[sum.length - 1] !== 3) throw new Error("allreduce 8MiB: wrong sum");
        if (i >= 2) lat.push(performance.now() - s);
      }
      return lat.sort((x, y) => x - y);
    });
    out("comm_allreduce_8MiB", { calls: 20, ranks: 2, median_ms: Math.round(times![10]! * 100) / 100 });
  }
  if (want("comm_allreduce_8MiB_out")) {
    // The same into one result array reused by every call (`{ out }`), as the mpi4py anchor's
    // `Allreduce(sendbuf, recvbuf)` does: no fresh 8 MiB per call.
    const [times] = await pair.applySync(async () => {
      const { comm } = engine;
      const a = new Float64Array(1 << 20).fill(comm.rank + 1);
      const result = new Float64Array(1 << 20);
      const lat: number[] = [];
      for (let i = 0; i < 22; i++) {
        await comm.barrier();
        const s = performance.now();
        const sum = await comm.allreduce(a, "sum", { out: result });
        if (i >= 2) lat.push(performance.now() - s);
        if (sum !== result || sum[0] !== 3 || sum[sum.length - 1] !== 3)
          throw new Error("allreduce 8MiB out: wrong sum");
        result.fill(0); // the next call must write every element again
      }
      return lat.sort((x, y) => x - y);
    });
    out("comm_allreduce_8MiB_out", { calls: 20, ranks: 2, median_ms: Math.round(times![10]! * 100) / 100 });
  }
  if (rc.ids.length > 2 && want("comm_allreduce_all")) {
    // With more engines than two (BENCH_ENGINES=4 on this 2-core machine: oversubscribed), the
    // scalar and 8 MiB allreduces over every engine, each result checked on every rank.
    // (comm-byte-counts.test checks the 8 MiB ring's bytes per engine against 2·(p−1)/p.)
    const all = rc.view();
    const p = rc.ids.length;
    const medians = await all.applySync(async () => {
      const { comm } = engine;
      const n = comm.size;
      const a = new Float64Array(1 << 20).fill(comm.rank + 1);
      const scalar: number[] = [];
      for (let i = 0; i < 220; i++) {
        const s = performance.now();
        const total = await comm.allreduce(comm.rank + i, "sum");
        if (total !== (n * (n - 1)) / 2 + n * i) throw new Error(`allreduce over ${n} gave ${total}`);
        if (i >= 20) scalar.push((performance.now() - s) * 1000);
      }
      const big: number[] = [];
      for (let i = 0; i < 12; i++) {
        await comm.barrier();
        const s = performance.now();
        const sum = (await comm.allreduce(a, "sum")) as Float64Array;
        const want = (n * (n + 1)) / 2;
        if (sum[0] !== want || sum[sum.length >> 1] !== want || sum[sum.length - 1] !== want)
          throw new Error(`allreduce 8MiB over ${n}: wrong sum`);
        if (i >= 2) big.push(performance.now() - s);
      }
      const mid = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!;
      return [mid(scalar), mid(big)];
    });
    out("comm_allreduce_scalar_all", { calls: 200, ranks: p, median_us: Math.round(medians[0]![0]!) });
    out("comm_allreduce_8MiB_all", { calls: 10, ranks: p, median_ms: Math.round(medians[0]![1]! * 100) / 100 });
  }
  if (["comm_pingpong", "comm_allreduce_scalar", "comm_allreduce_8MiB"].some(want)) {
    const mpi = await execa(
      "mpiexec",
      ["--allow-run-as-root", "-n", "2", "--oversubscribe", "/usr/bin/python3", ANCHOR],
      { reject: false, timeout: 120_000 },
    );
    if (mpi.exitCode === 0) process.stdout.write(`${mpi.stdout.trim()}\n`);
    else {
      const why = String(mpi.stderr || mpi.shortMessage || `exit ${mpi.exitCode}`).split("\n")[0];
      process.stderr.write(`mpi4py anchor skipped: ${why}\n`);
    }
  }
}
