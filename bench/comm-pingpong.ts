/**
 * `npx tsx bench/comm-pingpong.ts`: the cost of an `engine.comm` round trip between two engines
 * (direct peer sockets; `PTCLUSTER_COMM_PATH=relay` for the controller's relay), timed inside one
 * task pair so the client is not on the path.
 * Rank 0 sends, rank 1 sends back, `ROUNDS` times; reported: median, p90 and p99 per round trip (µs).
 */
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@ptcluster/client";

const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));
const ROUNDS = Number(process.env["ROUNDS"] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), "ptc-bench-comm-"));
process.env["PTCLUSTER_DIR"] = dir;

await execa("node", [BIN, "start", "-n", "2", "--json"], { env: { PTCLUSTER_DIR: dir } });
const rc = await connect();
try {
  const pingpong = async (rounds: number, bytes: number) => {
    const comm = engine.comm;
    const payload = bytes ? new Uint8Array(bytes) : 1;
    const times: number[] = [];
    for (let i = 0; i < rounds + 50; i++) {
      const t0 = performance.now();
      if (comm.rank === 0) {
        await comm.send(1, payload);
        await comm.recv({ source: 1 });
      } else {
        await comm.send(0, await comm.recv({ source: 0 }));
      }
      if (i >= 50) times.push((performance.now() - t0) * 1000); // after a warm-up
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => Math.round(times[Math.floor(times.length * p)] as number);
    return { median_us: q(0.5), p90_us: q(0.9), p99_us: q(0.99) };
  };
  const relayed = async () => (await rc.status()).engines.reduce((n, e) => n + (e.link?.comm?.relayed ?? 0), 0);
  for (const bytes of [0, 1 << 20]) {
    const [r0] = await rc.view().applySync(pingpong, bytes === 0 ? ROUNDS : 100, bytes);
    // The path the messages took, from the engines' own counts (they ride on heartbeats).
    await new Promise((r) => setTimeout(r, 1_200));
    const path = (await relayed()) > 0 ? "relay" : "direct";
    process.stdout.write(
      `${JSON.stringify({ workload: "comm_pingpong", path, bytes, rounds: bytes === 0 ? ROUNDS : 100, ...r0 })}\n`,
    );
  }
} finally {
  await rc.close();
  await execa("node", [BIN, "stop"], { env: { PTCLUSTER_DIR: dir } });
  rmSync(dir, { recursive: true, force: true });
}
