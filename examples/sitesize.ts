/**
 * IO-bound task farming: the tutorials' `ThreadPool(10).imap_unordered(sitesize, urls)`, which
 * fetches web pages and prints `(url, size)` as each arrives. Here the "web" is a local HTTP server
 * this script starts (pages of varied sizes, each answered after a 50 ms delay), so it runs
 * anywhere, offline, in a few seconds. Three ways, timed:
 *
 *   (a) a serial loop in this process ("test with plain map in one process first");
 *   (b) `lb.imap(siteSize, urls, { ordered: false })` on the cluster `connect()` finds;
 *   (c) the same on a cluster this script starts with `concurrency: 16`, so each engine has many
 *       requests waiting on the network at once, the way a ThreadPool serves IO-bound jobs.
 *
 *   npx ptcluster start -n 4 && npx tsx examples/sitesize.ts && npx ptcluster stop
 *
 * `SITESIZE_URLS=100` changes the number of pages (default 40).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, startCluster, type LoadBalancedView } from "@ptcluster/client";

const COUNT = Number(process.env["SITESIZE_URLS"] ?? 40);
const DELAY_MS = 50;

// Page i is (i * 7919) % 50,000 + 1,000 bytes long, served after DELAY_MS.
const server = createServer((req, res) => {
  const i = Number(new URL(req.url ?? "/", "http://x").searchParams.get("page") ?? 0);
  setTimeout(() => res.end("x".repeat(((i * 7919) % 50_000) + 1_000)), DELAY_MS);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;
const urls = Array.from({ length: COUNT }, (_, i) => `http://127.0.0.1:${port}/?page=${i}`);

/** The task: runs unchanged in this process and on an engine; returns [url, size] so unordered results stay meaningful. */
async function siteSize(url: string): Promise<[string, number]> {
  const res = await fetch(url);
  const body = await res.arrayBuffer();
  return [url, body.byteLength];
}

const expected = new Map(urls.map((u, i) => [u, ((i * 7919) % 50_000) + 1_000]));
const check = (results: Array<[string, number]>, label: string) => {
  if (results.length !== urls.length || results.some(([u, size]) => expected.get(u) !== size))
    throw new Error(`${label}: wrong sizes`);
};

/** Prints [url, size] as each page arrives (first done, first out) and returns them all. */
async function farm(lb: LoadBalancedView, label: string): Promise<Array<[string, number]>> {
  const results: Array<[string, number]> = [];
  // chunkSize 1: each page is its own task. Items of one chunk run one after the other on an
  // engine, so for waiting-bound work one page per task keeps every concurrent slot busy.
  console.log(`${label}:`);
  for await (const r of lb.imap(siteSize, urls, { ordered: false, chunkSize: 1 })) {
    console.log(r);
    results.push(r);
  }
  check(results, label);
  return results;
}

const times: Array<[string, number]> = [];
try {
  // (a) serial, in this process.
  let t = performance.now();
  const serial: Array<[string, number]> = [];
  for (const url of urls) serial.push(await siteSize(url));
  check(serial, "serial");
  times.push(["serial loop in the client", (performance.now() - t) / 1000]);
  console.log(`serial: ${serial.length} pages, ${serial.reduce((s, [, n]) => s + n, 0)} bytes`);

  // (b) the running cluster, one request at a time per engine (unless it was started with --concurrency).
  {
    await using rc = await connect();
    const lb = rc.loadBalancedView();
    t = performance.now();
    const got = await farm(lb, "cluster");
    times.push([`imap unordered, ${rc.ids.length} engines`, (performance.now() - t) / 1000]);
    console.log(`cluster: ${got.length} pages from ${rc.ids.length} engines`);
  }

  // (c) a cluster of 2 engines with 16 tasks each in flight: IO-bound work overlaps its waits.
  {
    await using cluster = await startCluster({ n: 2, concurrency: 16 });
    const rc = await cluster.connect();
    const lb = rc.loadBalancedView();
    await lb.map(siteSize, urls.slice(0, 2), { chunkSize: 1 }); // ship the function first: time the farming, not start-up
    t = performance.now();
    const got = await farm(lb, "concurrency 16");
    times.push(["imap unordered, 2 engines × concurrency 16", (performance.now() - t) / 1000]);
    console.log(`concurrency 16: ${got.length} pages`);
  }
} finally {
  server.close();
}

console.log(`\n${COUNT} pages, ${DELAY_MS} ms each`);
console.log("| how | seconds | speedup |");
console.log("|---|---|---|");
const base = times[0]![1];
for (const [how, s] of times) console.log(`| ${how} | ${s.toFixed(2)} | ${(base / s).toFixed(1)}× |`);
