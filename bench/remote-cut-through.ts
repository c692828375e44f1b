/**
 * `npx tsx bench/remote-cut-through.ts`: the controller path across hosts, for cut-through
 * (docs/architecture.md, "Large values across hosts"). One engine in another network namespace,
 * shared memory off; `lb_50MB_remote` (a load-balanced echo of 50 MiB: client → controller →
 * engine → controller → client) and `push_pull_50MB_remote` with `PTCLUSTER_DIRECT=off` (the
 * DirectView push and pull through the controller), REPS of each, with the controller's peak
 * resident memory over each load-balanced echo (its high-water mark reset before, as root).
 * Prints one JSON line: medians and every figure. Set `PTCLUSTER_FRAGMENT_KB` (and
 * `PTCLUSTER_CUT_THROUGH`) in the environment to choose what is measured.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { netnsUnavailable } from "../test/helpers/netns.js";
import { withRemoteEngine } from "./remote.js";

const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));
const REPS = Number(process.env["REPS"] ?? 3);
const MiB = 1 << 20;

const status = (pid: number, field: string) =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
/** CPU time (ms, user + system) a process has used, from /proc. */
const cpuMs = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const why = netnsUnavailable();
  if (why) {
    console.log(JSON.stringify({ skipped: why }));
    return;
  }
  // Clients of this process go through the controller for DirectView calls too.
  process.env["PTCLUSTER_DIRECT"] = "off";
  const env = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  await withRemoteEngine(BIN, env, "bench_cut_through", async (rc) => {
    const st0 = (await rc.status()) as { pid: number; engines: Array<{ pid: number }> };
    const pid = st0.pid;
    const enginePid = st0.engines[0]?.pid as number;
    const cpu = { controller: [] as number[], engine: [] as number[], client: [] as number[] };
    const payload = randomBytes(50 * MiB);
    const same = (v: unknown) => {
      const b = v as Uint8Array;
      if (!Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(payload)) throw new Error("corrupted");
    };
    const lb = rc.loadBalancedView();
    const e = rc.engine(rc.ids[0] as number);
    await lb.apply((b: Uint8Array) => b.length, payload.subarray(0, MiB));
    const lbMs: number[] = [];
    const ppMs: number[] = [];
    const peak: number[] = [];
    const before = status(pid, "VmRSS");
    for (let i = 0; i < REPS; i++) {
      writeFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
      const base = status(pid, "VmRSS");
      const c0 = [cpuMs(pid), cpuMs(enginePid), process.cpuUsage()] as const;
      let s = performance.now();
      same(await lb.apply((b: Uint8Array) => b, payload));
      lbMs.push(performance.now() - s);
      const own = process.cpuUsage(c0[2]);
      cpu.controller.push(cpuMs(pid) - c0[0]);
      cpu.engine.push(cpuMs(enginePid) - c0[1]);
      cpu.client.push((own.user + own.system) / 1000);
      peak.push(status(pid, "VmHWM") - base);
      s = performance.now();
      await e.push({ blob: payload });
      same((await e.pull("blob")) as Uint8Array);
      ppMs.push(performance.now() - s);
    }
    const st = (await rc.status()) as { cutThrough?: unknown; messages?: unknown };
    const r = (x: number) => Math.round(x);
    console.log(
      JSON.stringify({
        fragmentKb: process.env["PTCLUSTER_FRAGMENT_KB"] ?? null,
        cutThrough: process.env["PTCLUSTER_CUT_THROUGH"] ?? null,
        lb_50MB_remote_ms: r(median(lbMs)),
        lb_mb_per_s: r(100 / (median(lbMs) / 1000)),
        push_pull_50MB_remote_direct_off_ms: r(median(ppMs)),
        pp_mb_per_s: r(100 / (median(ppMs) / 1000)),
        controller_peak_rss_over_lb_mb: r(median(peak)),
        // CPU time per load-balanced echo (ms): on a machine whose cores are all busy, what decides.
        lb_cpu_ms: {
          controller: r(median(cpu.controller)),
          engine: r(median(cpu.engine)),
          client: r(median(cpu.client)),
        },
        controller_rss_before_mb: r(before),
        all: { lb: lbMs.map(r), pp: ppMs.map(r), peak: peak.map(r) },
        counts: st.cutThrough ?? null,
        messages: st.messages,
        client: rc.connectionStats(),
      }),
    );
  });
}

await main();
