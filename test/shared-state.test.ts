import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { QueueClosedError, SharedKindError, SharedTimeoutError, type Client } from "@ptcluster/client";
import { ptcluster, tempClusterDir, useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

const HOLDER = fileURLToPath(new URL("./fixtures/shared-lock-holder.ts", import.meta.url));
const USING = fileURLToPath(new URL("./fixtures/using-lock.ts", import.meta.url));

// Two clusters (two profiles) in one PTCLUSTER_DIR; the scripts it runs use the default profile.
const tmp = tempClusterDir();
afterAll(() => tmp.cleanup());

describe("shared state across clients and engines", () => {
  // A short client timeout: a client that vanishes is noticed within the test.
  const ctx = useCluster({ n: 2, dir: tmp.dir, extra: ["--client-timeout", "1500", "--heartbeat", "200"] });
  let rc: Client;

  it("the issue's walk-through: engines drain a queue into a dict; an array is doubled in place by a map", async () => {
    rc = ctx.rc;
    const q = rc.shared.queue<number>("numbers", { maxsize: 10_000 });
    await q.putMany(Array.from({ length: 1000 }, (_, i) => i));
    await q.close();
    const counts = await rc.view().apply(async () => {
      const q = engine.shared.queue<number>("numbers");
      const found = engine.shared.dict<number>("primes");
      let n = 0;
      for await (const x of q) {
        n++;
        let prime = x > 1;
        for (let d = 2; d * d <= x && prime; d++) if (x % d === 0) prime = false;
        if (prime) await found.set(String(x), engine.id);
      }
      return n;
    });
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    const primes = await rc.shared.dict<number>("primes").keys();
    expect(primes.length).toBe(168);
    expect(new Set((await rc.shared.dict<number>("primes").entries()).map(([, e]) => e)).size).toBeGreaterThanOrEqual(
      1,
    );

    const arr = rc.shared.array("arr", Float64Array.from([5, 10, 15, 20, 25]));
    await rc.view().map(async (i: number) => engine.shared.array("arr").update(i, "mul", 2), [0, 1, 2, 3, 4]);
    expect(await arr.read()).toEqual(Float64Array.from([10, 20, 30, 40, 50]));
    for (const name of ["numbers", "primes", "arr"]) await rc.shared.dict(name).destroy();
    await expect(q.size()).resolves.toBe(0); // reopened empty by that call: a fresh queue
    await q.destroy();
  });

  it("atomic updates from 2 engines × 4 concurrent tasks × 250 sum exactly", async () => {
    await rc.view().apply(async () => {
      const c = engine.shared.counter("hits");
      const d = engine.shared.dict<number>("tally");
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 250; i++) {
            await c.add(1);
            await d.update("n", "add", 1);
          }
        }),
      );
    });
    expect(await rc.shared.counter("hits").get()).toBe(2000);
    expect(await rc.shared.dict<number>("tally").get("n")).toBe(2000);
    await rc.shared.counter("hits").destroy();
    await rc.shared.dict("tally").destroy();
  });

  it("a blocking get on one engine is answered by a put from the other; a timeout is a named error", async () => {
    const waiter = rc.engine(0).apply(async () => engine.shared.queue<string>("handoff").get({ timeout: 10_000 }));
    await waitFor(
      async () => {
        const s = await rc.status();
        return s.shared.objects.find((o) => o.name === "handoff")?.waiting === 1;
      },
      { what: "engine 0 to wait on the queue" },
    );
    await rc.engine(1).apply(async () => engine.shared.queue<string>("handoff").put(`from ${engine.id}`));
    expect(await waiter).toBe("from 1");
    const started = Date.now();
    await expect(rc.shared.queue("handoff").get({ timeout: 150 })).rejects.toBeInstanceOf(SharedTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await rc.shared.queue("handoff").close();
    await expect(rc.shared.queue("handoff").get()).rejects.toBeInstanceOf(QueueClosedError);
    await expect(rc.shared.dict("handoff").size()).rejects.toBeInstanceOf(SharedKindError);
    await rc.shared.queue("handoff").destroy();
  });

  it("a lock held by a task whose executor is replaced (timeout) is freed; so is one held by a client that is SIGKILLed", async () => {
    const held = rc
      .loadBalancedView([0])
      .with({ timeout: 300 })
      .apply(async () => {
        await engine.shared.lock("db").acquire();
        for (;;) {
          /* spins holding the lock until its executor is replaced */
        }
      });
    await expect(held).rejects.toThrow();
    const lock = rc.shared.lock("db");
    const hold = await lock.acquire({ timeout: 5_000 });
    await hold.release();

    // Another client process takes the lock and dies without releasing it.
    // `node --import tsx`, not the tsx CLI: the killed process must be the client itself.
    const child = execa(process.execPath, ["--import", "tsx", HOLDER, "db"], {
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => d.toString().includes("held") && resolve());
      void child.then((r) => reject(new Error(`the client script ended: ${r.stderr}`)));
    });
    expect(await lock.locked()).toBe(true);
    child.kill("SIGKILL");
    await child;
    const started = Date.now();
    const again = await lock.acquire({ timeout: 10_000 });
    // Freed once the controller noticed the client gone (--client-timeout 1500).
    expect(Date.now() - started).toBeLessThan(8_000);
    await again.release();
    await lock.destroy();
  });

  it("`await using` in shipped code compiled by tsx holds a lock for its block, and releases it when the block throws", async () => {
    const r = await execa(process.execPath, ["--import", "tsx", USING], { env: { PTCLUSTER_DIR: ctx.dir } });
    expect(JSON.parse(r.stdout)).toEqual({
      inBlock: [true, true],
      afterBlock: false,
      thrown: expect.stringContaining("inside the block"),
      afterThrow: false,
    });
  });

  it("status lists the objects with their sizes; deleting them gives the memory back", async () => {
    const d = rc.shared.dict<Uint8Array>("blobs");
    await d.set("a", new Uint8Array(100_000));
    const s = await rc.status();
    expect(s.shared.objects).toContainEqual(expect.objectContaining({ name: "blobs", kind: "dict", size: 1 }));
    expect(s.shared.bytes).toBeGreaterThanOrEqual(100_000);
    const out = await ptcluster(ctx.dir, ["status"]);
    expect(out.stdout).toMatch(/^Shared state: 1 object, 0\.1 of 1024 MB$/m);
    expect(out.stdout).toMatch(/^NAME +KIND +SIZE +MB +WAITING\nblobs +dict +1 +0\.1 +0$/m);
    await d.destroy();
    const after = await rc.status();
    expect(after.shared.bytes).toBe(0);
    expect(after.shared.objects).toEqual([]);
  });
});

describe("controller memory and shared state", () => {
  const ctx = useCluster({ n: 1, dir: tmp.dir, profile: "memory" });
  const live = (s: { memory: { heapUsed: number; external: number } }) => s.memory.heapUsed + s.memory.external;

  it("40 MB stored in a dict, a queue and an array is given back when they are deleted: the controller's live memory returns to its baseline", async () => {
    const { rc } = ctx;
    // One round first, so what is allocated once (compiled code, pools) is in the baseline.
    const round = async () => {
      const d = rc.shared.dict<Uint8Array>("mem-dict");
      const q = rc.shared.queue<Uint8Array>("mem-queue");
      for (let i = 0; i < 10; i++) await d.set(`k${i}`, new Uint8Array(2 * 2 ** 20).fill(i));
      await q.putMany(Array.from({ length: 10 }, (_, i) => new Uint8Array(2 * 2 ** 20).fill(i)));
      rc.shared.array("mem-array", Float64Array, 2 ** 20); // 8 MB
      return (await rc.status()).shared.bytes;
    };
    await round();
    for (const name of ["mem-dict", "mem-queue", "mem-array"]) await rc.shared.delete(name);
    const baseline = live(await rc.status({ gc: true }));
    const stored = await round();
    expect(stored).toBeGreaterThanOrEqual(48 * 2 ** 20);
    const during = live(await rc.status({ gc: true }));
    expect(during - baseline).toBeGreaterThanOrEqual(40 * 2 ** 20);
    for (const name of ["mem-dict", "mem-queue", "mem-array"]) await rc.shared.delete(name);
    const after = await rc.status({ gc: true });
    expect(after.shared).toMatchObject({ bytes: 0, objects: [] });
    expect(live(after) - baseline).toBeLessThan(4 * 2 ** 20);
  });
});

describe("shared state when an engine dies", () => {
  const ctx = useCluster({ n: 2, dir: tmp.dir, profile: "deaths", extra: ["--heartbeat", "200"] });

  it("a barrier releases both engines together; an item taken with ack by an engine that is SIGKILLed goes back to the queue; its waiting get takes nothing", async () => {
    const { rc } = ctx;
    const [a, b] = rc.ids as [number, number];
    const arrivals = await rc.view().apply(async () => engine.shared.barrier("both", 2).wait({ timeout: 10_000 }));
    expect([...arrivals].sort()).toEqual([0, 1]);

    const jobs = rc.shared.queue<string>("acked");
    await jobs.putMany(["first", "second"]);
    // Engine a takes "first" with ack, never acknowledges it, and dies.
    const pidA = await rc.engine(a).apply(async () => {
      const item = await engine.shared.queue<string>("acked").get({ ack: true, timeout: 5_000 });
      (globalThis as { held?: unknown }).held = item;
      return engine.pid;
    });
    expect(await jobs.size()).toBe(1);
    // A get of engine a waits on an empty queue when a dies: it must not take the next item.
    const waiting = rc.engine(a).apply(async () => engine.shared.queue<string>("empty").get());
    await waitFor(async () => (await rc.status()).shared.objects.find((o) => o.name === "empty")?.waiting === 1, {
      what: "engine a to wait on the empty queue",
    });
    process.kill(pidA, "SIGKILL");
    await expect(waiting).rejects.toThrow();
    await waitFor(() => !rc.ids.includes(a), { what: `engine ${a} to be declared gone` });
    // "first" is back, at the front.
    expect(
      await rc.engine(b).apply(async () => engine.shared.queue<string>("acked").getMany(5, { timeout: 5_000 })),
    ).toEqual(["first", "second"]);
    // The dead engine's get was dropped: a put now waits for a live consumer.
    await rc.shared.queue<string>("empty").put("for the living");
    expect(await rc.engine(b).apply(async () => engine.shared.queue<string>("empty").get({ timeout: 5_000 }))).toBe(
      "for the living",
    );
    for (const name of ["acked", "empty"]) await rc.shared.delete(name);
  });
});
