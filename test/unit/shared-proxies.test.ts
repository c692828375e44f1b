import { describe, expect, it } from "vitest";
import {
  BarrierBrokenError,
  LockNotHeldError,
  QueueClosedError,
  SharedCancelledError,
  SharedKindError,
  SharedNamespace,
  SharedTimeoutError,
  sharedStateError,
  type SharedTransport,
} from "@ptcluster/protocol";
import { SharedStore } from "../../packages/hub/src/shared-state/store.js";

/** The proxies over an in-process store: the API as users call it, without sockets. */
function namespaces(...holders: string[]) {
  const store = new SharedStore({ maxBytes: 1 << 24 });
  let rid = 0;
  const transport = (holder: string): SharedTransport => ({
    call: (name, spec, op, args, parts, signal) =>
      new Promise((resolve, reject) => {
        const id = ++rid;
        const onAbort = () => store.withdraw(holder, id);
        signal?.addEventListener("abort", onAbort, { once: true });
        store.call(
          name,
          spec,
          op,
          {
            holder,
            rid: id,
            reply: (r) => {
              signal?.removeEventListener("abort", onAbort);
              if (r.ok) resolve({ value: r.value, parts: r.parts ?? [] });
              else reject(sharedStateError(r.code, r.message));
            },
          },
          { ...args, parts },
        );
      }),
  });
  return { store, sh: holders.map((h) => new SharedNamespace(transport(h))) };
}

describe("shared-state proxies", () => {
  it("the design's walk-through: dict, counter, array doubled in place, queue drained by iteration", async () => {
    const {
      sh: [client, e0, e1],
    } = namespaces("c:1", "e:0", "e:1");
    const d = client!.dict<number>("counts");
    await d.set("a", 1);
    expect(await d.get("a")).toBe(1);
    expect(await e0!.dict<number>("counts").update("hits", "add", 5)).toBe(5);
    expect(await d.entries()).toEqual([
      ["a", 1],
      ["hits", 5],
    ]);
    const arr = client!.array("arr", Float64Array.from([5, 10, 15, 20, 25]));
    await Promise.all([0, 1, 2, 3, 4].map((i) => (i % 2 ? e0 : e1)!.array("arr").update(i, "mul", 2)));
    expect(await arr.read()).toEqual(Float64Array.from([10, 20, 30, 40, 50]));
    const zeros = client!.array("z", Int32Array, 3);
    expect(await zeros.read()).toEqual(new Int32Array(3));

    const q = client!.queue<number>("numbers", { maxsize: 100 });
    await q.putMany(Array.from({ length: 50 }, (_, i) => i));
    await q.close();
    const seen: number[] = [];
    for await (const n of e0!.queue<number>("numbers")) seen.push(n);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await expect(e1!.queue("numbers").get()).rejects.toBeInstanceOf(QueueClosedError);
    await expect(e1!.queue("numbers").put(1)).rejects.toBeInstanceOf(QueueClosedError);
    expect(await client!.counter("done").add()).toBe(1);
    await expect(client!.queue("counts").size()).rejects.toBeInstanceOf(SharedKindError);
  });

  it("`await using` releases a lock; a second release is refused; a dead holder's lock goes to the next in line", async () => {
    const {
      store,
      sh: [a, b],
    } = namespaces("e:0", "e:1");
    {
      await using held = await a!.lock("db").acquire({ timeout: 1000 });
      expect(await b!.lock("db").locked()).toBe(true);
      expect(held.token).toBeGreaterThan(0);
    }
    expect(await b!.lock("db").locked()).toBe(false);
    const hold = await a!.lock("db").acquire();
    const waiting = b!.lock("db").acquire();
    store.holderGone("e:0");
    const next = await waiting;
    await expect(a!.lock("db").releaseToken(hold.token)).rejects.toBeInstanceOf(LockNotHeldError);
    await next.release();
  });

  it("blocking calls time out with SharedTimeoutError and are withdrawn by their signal", async () => {
    const {
      sh: [a],
    } = namespaces("c:1");
    const started = Date.now();
    await expect(a!.queue("empty").get({ timeout: 30 })).rejects.toBeInstanceOf(SharedTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    const ac = new AbortController();
    const waiting = a!.event("never").wait({ signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(SharedCancelledError);
    await expect(a!.event("never").wait({ signal: ac.signal })).rejects.toThrow();
  });

  it("an acknowledged get keeps its item for its consumer; unacknowledged, it goes back when the consumer dies", async () => {
    const {
      store,
      sh: [producer, c0, c1],
    } = namespaces("c:1", "e:0", "e:1");
    await producer!.queue<string>("jobs").putMany(["a", "b"]);
    const first = await c0!.queue<string>("jobs").get({ ack: true });
    const second = await c0!.queue<string>("jobs").get({ ack: true });
    expect([first.value, second.value]).toEqual(["a", "b"]);
    await first.ack();
    store.holderGone("e:0");
    expect(await c1!.queue<string>("jobs").get({ timeout: 100 })).toBe("b");
  });

  it("a barrier answers each party its arrival index; a party's timeout breaks the round for the others", async () => {
    const {
      sh: [a, b, c],
    } = namespaces("e:0", "e:1", "e:2");
    const indexes = await Promise.all([a, b, c].map((s) => s!.barrier("phase", 3).wait()));
    expect(indexes.sort()).toEqual([0, 1, 2]);
    const waiting = a!.barrier("phase").wait();
    await expect(b!.barrier("phase").wait({ timeout: 20 })).rejects.toBeInstanceOf(BarrierBrokenError);
    await expect(waiting).rejects.toBeInstanceOf(BarrierBrokenError);
  });
});
