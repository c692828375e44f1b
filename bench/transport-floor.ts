/**
 * How much of a shared-state call is the transport: ZeroMQ round trips between two processes on
 * this host, over TCP loopback (what clients and engines use) and over an IPC (Unix) socket (what a
 * same-host client could use), with a 100-byte message and no authentication or codec. One JSON line
 * each, in the bench schema.
 *
 *   npx tsx bench/transport-floor.ts
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zmq from "zeromq";

const CALLS = 5_000;

if (process.argv[2] === "echo") {
  // The echo side: a ROUTER that sends every message back.
  const router = new zmq.Router();
  await router.bind(process.argv[3] as string);
  process.send?.({ ready: router.lastEndpoint });
  for await (const frames of router) await router.send(frames);
} else {
  const dir = mkdtempSync(join(tmpdir(), "ptc-floor-"));
  try {
    for (const [transport, endpoint] of [
      ["tcp", "tcp://127.0.0.1:0"],
      ["ipc", `ipc://${join(dir, "echo.sock")}`],
    ] as const) {
      const echo = fork(new URL(import.meta.url).pathname, ["echo", endpoint], { execArgv: ["--import", "tsx"] });
      const bound = await new Promise<string>((resolve) =>
        echo.once("message", (m: { ready: string }) => resolve(m.ready)),
      );
      const dealer = new zmq.Dealer();
      dealer.connect(bound);
      const payload = Buffer.alloc(100, 7);
      const lat: number[] = [];
      for (let i = 0; i < CALLS + 500; i++) {
        const s = performance.now();
        await dealer.send(payload);
        await dealer.receive();
        if (i >= 500) lat.push((performance.now() - s) * 1000);
      }
      lat.sort((a, b) => a - b);
      process.stdout.write(
        `${JSON.stringify({
          system: `zeromq-${transport}`,
          workload: "round_trip_100B",
          calls: CALLS,
          median_us: Math.round(lat[CALLS >> 1] as number),
          p99_us: Math.round(lat[Math.floor(CALLS * 0.99)] as number),
        })}\n`,
      );
      dealer.close();
      echo.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
