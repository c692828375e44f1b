/**
 * `npm run bench:floor`: how fast an `applySync` round trip could be on this machine, measured
 * on the same path ptcluster takes (client → controller → engine → executor thread and back)
 * with less and less of ptcluster in it. One JSON line each:
 *
 *   zmq_one_hop     two Node processes, DEALER ↔ ROUTER, msgpackr: one hop and back
 *   bare_relay      client, controller and engine processes plus a worker thread: the path of an
 *                   apply, doing nothing but forwarding (no authentication, no features)
 *   channel_relay   the same relay, every hop through ptcluster's Channel (frame authentication,
 *                   reliable delivery, the wire layout)
 *
 * Compare them with `npm run bench -- latency` run just before or after: machines here are
 * shared, so only figures from the same few minutes compare. CPU per call (from /proc, all
 * threads of each process) shows where the time goes.
 */
import * as zmq from "zeromq";
import { pack, unpack } from "msgpackr";
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Channel, silentLogger } from "@ptcluster/protocol";

const SELF = new URL(import.meta.url).pathname;
const CALLS = 3000;
const WARMUP = 300;
const key = Buffer.alloc(32, 7);
const logger = silentLogger();
const WORKER = `const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));`;

/** CPU time (µs) a process has used, all threads. */
function cpuUs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** Starts this file as `role` with `args`; resolves with the child and what it reports when ready. */
function child(role, args = []) {
  const c = fork(SELF, [role, ...args]);
  return new Promise((resolve, reject) => {
    c.once("message", (m) => resolve({ c, m }));
    c.once("exit", (code) => reject(new Error(`${role} exited (${code})`)));
  });
}

/** Times `CALLS` sequential round trips; reports the median, p99 and CPU per call of each process. */
async function measure(workload, rt, pids) {
  for (let i = 0; i < WARMUP; i++) await rt(i);
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuUs(p)]));
  const self0 = process.cpuUsage();
  const lat = [];
  for (let i = 0; i < CALLS; i++) {
    const t = process.hrtime.bigint();
    await rt(WARMUP + i);
    lat.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
  const self = process.cpuUsage(self0);
  lat.sort((a, b) => a - b);
  const cpu = { client: Math.round((self.user + self.system) / CALLS) };
  for (const [k, p] of Object.entries(pids)) cpu[k] = Math.round((cpuUs(p) - before[k]) / CALLS);
  process.stdout.write(
    `${JSON.stringify({ system: "floor", workload, calls: CALLS, median_us: Math.round(lat[CALLS / 2]), p99_us: Math.round(lat[Math.floor(CALLS * 0.99)]), cpu_us_per_call: cpu })}\n`,
  );
}

const role = process.argv[2];
if (role === "echo") {
  const r = new zmq.Router();
  await r.bind("tcp://127.0.0.1:*");
  process.send(r.lastEndpoint);
  for await (const [id, m] of r) await r.send([id, m]);
} else if (role === "bare-hub") {
  const cr = new zmq.Router(),
    er = new zmq.Router();
  await cr.bind("tcp://127.0.0.1:*");
  await er.bind("tcp://127.0.0.1:*");
  process.send({ client: cr.lastEndpoint, engine: er.lastEndpoint });
  let engine;
  void (async () => {
    for await (const [id, m] of er) {
      if (!engine) engine = id;
      else {
        const msg = unpack(m);
        await cr.send([Buffer.from(msg.c), pack(msg)]);
      }
    }
  })();
  for await (const [id, m] of cr) {
    const msg = unpack(m);
    msg.c = id;
    await er.send([engine, pack(msg)]);
  }
} else if (role === "bare-engine") {
  const d = new zmq.Dealer();
  d.connect(process.argv[3]);
  await d.send("hello");
  const w = new Worker(WORKER, { eval: true });
  const pending = new Map();
  w.on("message", async (r) => {
    const msg = pending.get(r.id);
    pending.delete(r.id);
    await d.send(pack(msg));
  });
  process.send("ready");
  for await (const [m] of d) {
    const msg = unpack(m);
    pending.set(msg.id, msg);
    w.postMessage({ id: msg.id, args: msg.args });
  }
} else if (role === "channel-hub") {
  const cr = new zmq.Router(),
    er = new zmq.Router();
  await cr.bind("tcp://127.0.0.1:*");
  await er.bind("tcp://127.0.0.1:*");
  let engine;
  const waiting = new Map();
  let toClients;
  const toEngines = new Channel({
    socket: er,
    clusterKey: key,
    sendLabel: "h2e",
    recvLabel: "e2h",
    router: true,
    logger,
    onMessage: (m) => {
      if (m.header.type === "register") {
        engine = m.from;
        process.send("ready");
        return;
      }
      const r = m.header.results[0];
      const to = waiting.get(r.id);
      waiting.delete(r.id);
      toClients.send({ type: "results", results: [r], pf: [0] }, m.parts, to);
    },
  }).start();
  toClients = new Channel({
    socket: cr,
    clusterKey: key,
    sendLabel: "h2c",
    recvLabel: "c2h",
    router: true,
    logger,
    onMessage: (m) => {
      waiting.set(m.header.tasks[0].id, m.from);
      toEngines.send({ type: "tasks", tasks: m.header.tasks, pf: [0] }, m.parts, engine);
    },
  }).start();
  process.send({ client: cr.lastEndpoint, engine: er.lastEndpoint });
} else if (role === "channel-engine") {
  const id = Buffer.from("floor-engine");
  const d = new zmq.Dealer({ routingId: id });
  d.connect(process.argv[3]);
  const w = new Worker(WORKER, { eval: true });
  const ch = new Channel({
    socket: d,
    clusterKey: key,
    sendLabel: "e2h",
    recvLabel: "h2e",
    selfId: id,
    logger,
    onMessage: (m) => w.postMessage({ id: m.header.tasks[0].id, body: m.parts[0].body }),
  }).start();
  w.on("message", (m) => {
    const now = Date.now();
    ch.send(
      { type: "engine_results", results: [{ id: m.id, ok: true, engine: 0, started: now, completed: now }], pf: [0] },
      [{ body: Buffer.from(m.body), frames: [] }],
    );
  });
  ch.send({ type: "register" });
} else {
  // zmq_one_hop
  {
    const { c, m: ep } = await child("echo");
    const d = new zmq.Dealer();
    d.connect(ep);
    await measure(
      "zmq_one_hop",
      async (i) => {
        await d.send(pack({ id: i, fn: "noop", args: [i] }));
        const [m] = await d.receive();
        return unpack(m);
      },
      { echo: c.pid },
    );
    d.close();
    c.kill();
  }
  // bare_relay
  {
    const { c: hub, m: eps } = await child("bare-hub");
    const { c: engine } = await child("bare-engine", [eps.engine]);
    const d = new zmq.Dealer();
    d.connect(eps.client);
    await measure(
      "bare_relay",
      async (i) => {
        await d.send(pack({ id: i, fn: "noop", args: [i] }));
        const [m] = await d.receive();
        return unpack(m);
      },
      { controller: hub.pid, engine: engine.pid },
    );
    d.close();
    hub.kill();
    engine.kill();
  }
  // channel_relay
  {
    const hubStart = child("channel-hub");
    const { c: hub, m: eps } = await hubStart;
    const registered = new Promise((r) => hub.once("message", r));
    const engine = fork(SELF, ["channel-engine", eps.engine]);
    await registered;
    const id = Buffer.from("floor-client");
    const d = new zmq.Dealer({ routingId: id });
    d.connect(eps.client);
    let answer;
    const ch = new Channel({
      socket: d,
      clusterKey: key,
      sendLabel: "c2h",
      recvLabel: "h2c",
      selfId: id,
      logger,
      onMessage: (m) => answer(m),
    }).start();
    const body = pack([[1]]);
    await measure(
      "channel_relay",
      (i) =>
        new Promise((resolve) => {
          answer = resolve;
          ch.send(
            { type: "submit", tasks: [{ id: i, op: "apply", fn: "floor-noop-function-hash" }], pf: [0], t: Date.now() },
            [{ body, frames: [] }],
          );
        }),
      { controller: hub.pid, engine: engine.pid },
    );
    await ch.close(0);
    hub.kill();
    engine.kill();
  }
  process.exit(0);
}
