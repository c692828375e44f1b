/**
 * `npx tsx bench/rss-probe.ts`: resident memory (KiB) of the controller and each engine, idle after
 * start and after some big-data work (a 50 MiB push and pull, twenty 8 MiB allreduces), one JSON
 * line. Run it with and without `PTCLUSTER_HUGEPAGES=0` to see what the huge-pages tunable costs.
 */
import { execa } from "execa";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect } from "@ptcluster/client";

const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "ptc-rss-"));
process.env["PTCLUSTER_DIR"] = dir;
const env = { PTCLUSTER_DIR: dir };

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

async function main(): Promise<void> {
  const started = await execa(process.execPath, [BIN, "start", "--json", "-n", "2"], { env });
  const { enginePids, controllerPid } = JSON.parse(started.stdout) as { enginePids: number[]; controllerPid: number };
  const pids = [controllerPid, ...enginePids];
  const rc = await connect();
  try {
    await rc.waitForEngines(2, { timeout: 30_000 });
    await rc.view().applySync(() => 1);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = pids.map(rss);
    const e0 = rc.engine(rc.ids[0] as number);
    const blob = randomBytes(50 << 20);
    for (let i = 0; i < 3; i++) {
      await e0.push({ blob });
      await e0.pull("blob");
    }
    await rc.view().applySync(async () => {
      const a = new Float64Array(1 << 20).fill(1);
      for (let i = 0; i < 20; i++) await engine.comm.allreduce(a, "sum");
    });
    const busy = pids.map(rss);
    await e0.execute("delete globalThis.blob");
    await new Promise((r) => setTimeout(r, 1000));
    const after = pids.map(rss);
    const tunables =
      readFileSync(`/proc/${enginePids[0]}/environ`, "utf8")
        .split("\0")
        .find((v) => v.startsWith("GLIBC_TUNABLES=")) ?? "";
    process.stdout.write(`${JSON.stringify({ tunables, controller_engines_kib: { idle, busy, after } })}\n`);
  } finally {
    await rc.close();
    await execa(process.execPath, [BIN, "stop"], { env, reject: false });
  }
}
await main();
