/**
 * `node bench/comm-breakdown.mjs`: where an `engine.comm` round trip's time goes. Two Node
 * processes (the two engines), each binding a ROUTER and dialling the other's with a DEALER, as
 * engines do; rank 0 times `CALLS` sequential ping-pongs of a small value. Layers are added one
 * at a time, so each line's difference from the one before is the cost of that layer:
 *
 *   zmq_main             bare frames between the main threads
 *   zmq_worker           bare frames, sockets owned by a worker thread
 *   channel_main         ptcluster's Channel (signatures, acknowledgements) + the value codec, main threads
 *   channel_worker       the same inside a worker thread (an executor that owns its socket)
 *   channel_main_hops    Channel on the main thread, the ping-pong logic in a worker thread: one
 *                        postMessage each way on each side (the path before the executor owned its link)
 *   net_worker           bare length-prefixed messages over Node's own TCP (`net`) in a worker thread
 *   link_worker          the executor links' protocol over it (peer-net/link-socket.ts: a key per
 *                        connection, a tag per message, delayed acknowledgements) + the value codec
 *
 * One JSON line each: median and p90 round trip (µs), CPU per round trip of each process. (The
 * ranks with ZeroMQ sockets in a worker print "terminate called ..." as they exit: zeromq 6.8 aborts
 * a process whose worker thread ends with a receive in flight, test/zmq-worker.test.ts.)
 */
import { performance } from "node:perf_hooks";
import * as zmq from "zeromq";
import { fork } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { Channel, decodeValue, encodeValue, silentLogger } from "@ptcluster/protocol";
import { connect, createServer } from "node:net";
import { randomBytes } from "node:crypto";
import { LinkDialer, LinkListener } from "../packages/engine/dist/peer-net/link-socket.js";
import { MsgReader } from "../packages/protocol/dist/lean/msg-reader.js";

const SELF = new URL(import.meta.url).pathname;
const CALLS = Number(process.env["CALLS"] ?? 2000);
const WARMUP = 200;
const key = Buffer.alloc(32, 7);
const logger = silentLogger();

/** CPU time (µs) by thread name ("node" is the main thread, "ZMQbg/IO/0" ZeroMQ's I/O thread, ...). */
function threadCpu(pid) {
  const out = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
      const name = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * 10_000;
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return out;
}

function cpuUs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/**
 * One rank's link layer: `open(peerEndpoint)` then `send(value)`; `onValue` gets what the peer sent.
 * Bound ROUTER + dialled DEALER, either bare or inside Channels.
 */
async function linkLayer(kind, rank, onValue) {
  if (kind === "netraw") return netLayer(onValue);
  if (kind === "link") return executorLinkLayer(rank, onValue);
  const router = new zmq.Router({ linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  const endpoint = router.lastEndpoint;
  let send;
  const open = (peer) => {
    const id = Buffer.from(`rank${rank}`);
    const dealer = new zmq.Dealer({ linger: 0, routingId: id });
    dealer.connect(peer);
    if (kind === "zmq") {
      void (async () => {
        for (;;) onValue((await router.receive())[1]);
      })();
      send = (v) => void dealer.send([Buffer.isBuffer(v) ? v : Buffer.from(String(v))]);
      return;
    }
    new Channel({
      socket: router,
      clusterKey: key,
      sendLabel: "p2e",
      recvLabel: "e2p",
      router: true,
      logger,
      onMessage: ({ parts }) => onValue(decodeValue(parts[0].body, parts[0].frames)),
    }).start();
    const out = new Channel({
      socket: dealer,
      clusterKey: key,
      sendLabel: "e2p",
      recvLabel: "p2e",
      selfId: id,
      logger,
    }).start();
    send = (v) => {
      const { body, frames } = encodeValue(v, "value");
      out.send({ type: "comm", g: "group", to: 1 - rank, from: rank, ch: "u:0", pf: [frames.length] }, [
        { body, frames },
      ]);
    };
  };
  return { endpoint, open, send: (v) => send(v) };
}

/** Bare messages over TCP: `u32 length | u32 0 | bytes`, one connection each way. */
async function netLayer(onValue) {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    const reader = new MsgReader(1 << 30);
    sock.on("data", (chunk) => {
      for (const m of reader.push(chunk)) onValue(m.subarray(8));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  let sock;
  const open = (peer) => (sock = connect({ host: "127.0.0.1", port: Number(peer), noDelay: true }));
  const send = (v) => {
    const body = Buffer.isBuffer(v) ? v : Buffer.from(String(v));
    const out = Buffer.alloc(8 + body.length); // MsgReader takes at least 4 bytes after the length
    out.writeUInt32BE(4 + body.length, 0);
    body.copy(out, 8);
    sock.write(out);
  };
  return { endpoint: String(server.address().port), open, send };
}

/** The executor links: `LinkListener` bound, `LinkDialer` to the peer's, comm messages with the value codec. */
async function executorLinkLayer(rank, onValue) {
  const listener = new LinkListener(key, 1 << 30, {
    hello: () => true,
    message: ({ parts }) => onValue(decodeValue(parts[0].body, parts[0].frames)),
  });
  const endpoint = String(await listener.listen("127.0.0.1"));
  let link;
  const open = (peer) => {
    link = new LinkDialer("127.0.0.1", Number(peer), key, 1 - rank, randomBytes(8), 1 << 30, {
      welcome: () => undefined,
      closed: () => undefined,
    });
  };
  const send = (v) => {
    const { body, frames } = encodeValue(v, "value");
    link.send({ type: "comm", g: "group", to: 1 - rank, from: rank, ch: "u:0", pf: [frames.length] }, [
      { body, frames },
    ]);
  };
  return { endpoint, open, send };
}

/** The ping-pong itself: rank 0 sends and waits, rank 1 echoes. Resolves (rank 0) with the latencies. */
function pingPong(rank, send) {
  let wake;
  const onValue = (v) => {
    if (rank === 1) send(v);
    else wake(v);
  };
  const run = async () => {
    const lat = [];
    for (let i = 0; i < CALLS + WARMUP; i++) {
      const s = performance.now();
      const got = new Promise((r) => (wake = r));
      send(i);
      await got;
      if (i >= WARMUP) lat.push((performance.now() - s) * 1000);
    }
    return lat;
  };
  return { onValue, run };
}

if (!isMainThread) {
  // A worker: either the rank's whole link layer (`*_worker`), or only its ping-pong logic (`hops`).
  const { kind, rank, hops } = workerData;
  if (hops) {
    const p = pingPong(rank, (v) => parentPort.postMessage({ v }));
    parentPort.on("message", (m) => {
      if (m.go) void p.run().then((lat) => parentPort.postMessage({ lat }));
      else p.onValue(m.v);
    });
  } else {
    let p;
    const link = await linkLayer(kind, rank, (v) => p.onValue(v));
    p = pingPong(rank, link.send);
    parentPort.postMessage({ endpoint: link.endpoint });
    parentPort.on("message", (m) => {
      if (m.peer) link.open(m.peer);
      if (m.go) void p.run().then((lat) => parentPort.postMessage({ lat }));
    });
  }
} else if (process.argv[2] === "rank") {
  // One engine process: `where` is main, worker or hops.
  const [, , , kind, where, rankArg] = process.argv;
  const rank = Number(rankArg);
  let go;
  process.on("message", (m) => m.exit && process.exit(0));
  if (where === "worker") {
    const w = new Worker(SELF, { workerData: { kind, rank } });
    const { endpoint } = await new Promise((r) => w.once("message", r));
    process.send({ endpoint });
    w.on("message", (m) => m.lat && process.send({ lat: m.lat }));
    process.on("message", (m) => w.postMessage(m));
  } else if (where === "hops") {
    const w = new Worker(SELF, { workerData: { kind, rank, hops: true } });
    const link = await linkLayer(kind, rank, (v) => w.postMessage({ v }));
    w.on("message", (m) => (m.lat ? process.send({ lat: m.lat }) : link.send(m.v)));
    process.send({ endpoint: link.endpoint });
    process.on("message", (m) => {
      if (m.peer) link.open(m.peer);
      if (m.go) w.postMessage({ go: true });
    });
  } else {
    let p;
    const link = await linkLayer(kind, rank, (v) => p.onValue(v));
    p = pingPong(rank, link.send);
    process.send({ endpoint: link.endpoint });
    go = () => void p.run().then((lat) => process.send({ lat }));
    process.on("message", (m) => {
      if (m.peer) link.open(m.peer);
      if (m.go) go();
    });
  }
} else {
  const only = process.argv[2];
  for (const [name, kind, where] of [
    ["zmq_main", "zmq", "main"],
    ["zmq_worker", "zmq", "worker"],
    ["channel_main", "channel", "main"],
    ["channel_worker", "channel", "worker"],
    ["channel_main_hops", "channel", "hops"],
    ["net_worker", "netraw", "worker"],
    ["link_worker", "link", "worker"],
  ]) {
    if (only && !name.includes(only)) continue;
    const ranks = [0, 1].map((r) =>
      fork(SELF, ["rank", kind, where, String(r)], {
        execArgv: process.env["PROF"]
          ? ["--cpu-prof", "--cpu-prof-interval=50", `--cpu-prof-dir=${process.env["PROF"]}`]
          : process.env["PERF"]
            ? ["--perf-basic-prof"]
            : [],
      }),
    );
    const eps = await Promise.all(ranks.map((c) => new Promise((r) => c.once("message", (m) => r(m.endpoint)))));
    ranks[0].send({ peer: eps[1] });
    ranks[1].send({ peer: eps[0] });
    await new Promise((r) => setTimeout(r, 200));
    const before = ranks.map((c) => cpuUs(c.pid));
    const threadsBefore = threadCpu(ranks[1].pid);
    const done = new Promise((r) => ranks[0].once("message", (m) => r(m.lat)));
    ranks[0].send({ go: true });
    const lat = (await done).sort((a, b) => a - b);
    const cpu = ranks.map((c, i) => Math.round((cpuUs(c.pid) - before[i]) / (CALLS + WARMUP)));
    const threads = Object.fromEntries(
      Object.entries(threadCpu(ranks[1].pid))
        .map(([k, v]) => [k, Math.round((v - (threadsBefore[k] ?? 0)) / (CALLS + WARMUP))])
        .filter(([, v]) => v > 0),
    );
    process.stdout.write(
      `${JSON.stringify({ workload: name, calls: CALLS, median_us: Math.round(lat[CALLS >> 1]), p90_us: Math.round(lat[Math.floor(CALLS * 0.9)]), cpu_us_per_rt: { rank0: cpu[0], rank1: cpu[1] }, rank1_threads: threads })}\n`,
    );
    await Promise.all(ranks.map((c) => new Promise((r) => (c.once("exit", r), c.send({ exit: true })))));
  }
}
