/**
 * Where the time of `push_pull_50MB_remote` goes: several 50 MiB pushes and pulls to an engine in
 * another network namespace (shared memory off), each timed alone, on the direct path and (with
 * `PTCLUSTER_DIRECT=off` in this process) through the controller, beside a bare ZeroMQ floor (the
 * same bytes DEALER → ROUTER and back across the bridge, no auth, no codec).
 *
 *   npx tsx bench/remote-breakdown.ts [rounds]
 */
import { randomBytes } from "node:crypto";
import { netnsUnavailable } from "../test/helpers/netns.js";
import { withRemoteEngine } from "./remote.js";

const BIN = new URL("../packages/cli/dist/bin.js", import.meta.url).pathname;
const PROFILE = "bench_remote_bd";
const rounds = Number(process.argv[2] ?? 5);
const why = netnsUnavailable();
if (why) {
  console.log(JSON.stringify({ skipped: why }));
  process.exit(0);
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
await withRemoteEngine(BIN, { ...process.env } as Record<string, string>, PROFILE, async (rc) => {
  const e = rc.engine(rc.ids[0] as number);
  const payload = randomBytes(50 * 1024 * 1024);
  await e.push({ warm: payload.subarray(0, 1024 * 1024) });
  const push: number[] = [];
  const pull: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let s = performance.now();
    await e.push({ blob: payload });
    push.push(performance.now() - s);
    s = performance.now();
    await e.pull("blob");
    pull.push(performance.now() - s);
  }
  const lb: number[] = [];
  const v = rc.loadBalancedView();
  for (let i = 0; i < rounds; i++) {
    const s = performance.now();
    await v.apply((b: Uint8Array) => b, payload);
    lb.push(performance.now() - s);
  }
  console.log(
    JSON.stringify({
      direct: process.env.PTCLUSTER_DIRECT ?? "on",
      push_ms: push.map(Math.round),
      pull_ms: pull.map(Math.round),
      roundtrip_mb_s: Math.round(100 / ((med(push) + med(pull)) / 1000)),
      lb_echo_ms: lb.map(Math.round),
      lb_mb_s: Math.round(100 / (med(lb) / 1000)),
    }),
  );
});
