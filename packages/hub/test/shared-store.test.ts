import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeValue, encodeValue, type OpenSpec, type Part } from "@ptcluster/protocol";
import type { SharedReply, StoreArgs } from "../src/shared-state/call.js";
import { SharedStore } from "../src/shared-state/store.js";

/** A store and a way to call it as a holder; each call's answers are recorded (at most one is allowed). */
function harness(maxBytes = 1 << 20) {
  const store = new SharedStore({ maxBytes });
  let rid = 0;
  const call = (holder: string, name: string, spec: OpenSpec | OpenSpec["kind"], op: string, args: StoreArgs = {}) => {
    const replies: SharedReply[] = [];
    const id = ++rid;
    store.call(
      name,
      typeof spec === "string" ? { kind: spec } : spec,
      op,
      { holder, rid: id, reply: (r) => replies.push(r) },
      args,
    );
    return {
      rid: id,
      replies,
      get answered() {
        expect(replies.length).toBeLessThanOrEqual(1);
        return replies.length === 1;
      },
      /** The one answer's value, or its parts decoded. */
      get value(): unknown {
        expect(replies).toHaveLength(1);
        const r = replies[0]!;
        if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
        return r.parts ? r.parts.map((p) => decodeValue(p.body, p.frames)) : r.value;
      },
      get code(): string {
        expect(replies).toHaveLength(1);
        const r = replies[0]!;
        return r.ok ? "ok" : r.code;
      },
    };
  };
  return { store, call };
}

const v = (x: unknown): Part => encodeValue(x);

afterEach(() => {
  vi.useRealTimers();
});

describe("shared dict", () => {
  it("sets, gets, checks, deletes and lists entries; values keep their structured-clone kind", () => {
    const { call } = harness();
    const value = { a: [1, 2n], d: new Date(5), m: new Map([["k", new Uint8Array([1, 2])]]) };
    expect(call("c:1", "d", "dict", "set", { key: "x", parts: [v(value)] }).code).toBe("ok");
    expect(call("e:0", "d", "dict", "get", { key: "x" }).value).toEqual([value]);
    expect(call("e:0", "d", "dict", "get", { key: "nope" }).value).toBe(false);
    expect(call("e:0", "d", "dict", "has", { key: "x" }).value).toBe(true);
    call("c:1", "d", "dict", "set", { key: "y", parts: [v(2)] });
    const entries = call("c:1", "d", "dict", "entries");
    expect(entries.replies[0]).toMatchObject({ ok: true, value: ["x", "y"] });
    expect(call("c:1", "d", "dict", "delete", { key: "x" }).value).toBe(true);
    expect(call("c:1", "d", "dict", "delete", { key: "x" }).value).toBe(false);
    expect(call("c:1", "d", "dict", "size").value).toBe(1);
  });

  it("update is an atomic read-modify-write that answers the new value; an absent key starts at 0", () => {
    const { call } = harness();
    for (let i = 0; i < 1000; i++)
      call(`e:${i % 4}`, "d", "dict", "update", { key: "hits", update: "add", parts: [v(1)] });
    expect(call("c:1", "d", "dict", "get", { key: "hits" }).value).toEqual([1000]);
    expect(call("c:1", "d", "dict", "update", { key: "hits", update: "mul", parts: [v(2)] }).value).toEqual([2000]);
    expect(call("c:1", "d", "dict", "update", { key: "lo", update: "min", parts: [v(7)] }).value).toEqual([7]);
    expect(call("c:1", "d", "dict", "update", { key: "big", update: "add", parts: [v(2n ** 70n)] }).value).toEqual([
      2n ** 70n,
    ]);
    call("c:1", "d", "dict", "set", { key: "s", parts: [v("text")] });
    const bad = call("c:1", "d", "dict", "update", { key: "s", update: "add", parts: [v(1)] });
    expect(bad.code).toBe("ERR_PTC_SHARED_VALUE");
    expect(call("c:1", "d", "dict", "update", { key: "hits", update: "pow", parts: [v(1)] }).code).toBe(
      "ERR_PTC_SHARED_VALUE",
    );
  });

  it("setIfAbsent answers the value that stays; compareAndSet swaps only on an equal current value", () => {
    const { call } = harness();
    expect(call("e:0", "d", "dict", "setIfAbsent", { key: "owner", parts: [v(0)] }).value).toEqual([0]);
    expect(call("e:1", "d", "dict", "setIfAbsent", { key: "owner", parts: [v(1)] }).value).toEqual([0]);
    expect(call("e:1", "d", "dict", "compareAndSet", { key: "owner", parts: [v(1), v(9)] }).value).toBe(false);
    expect(call("e:1", "d", "dict", "compareAndSet", { key: "owner", parts: [v(0), v(9)] }).value).toBe(true);
    expect(call("e:1", "d", "dict", "get", { key: "owner" }).value).toEqual([9]);
    // An absent key matches `undefined`.
    expect(call("e:1", "d", "dict", "compareAndSet", { key: "new", parts: [v(undefined), v({ a: 1 })] }).value).toBe(
      true,
    );
  });

  it("a name opened as another kind is an error that names both kinds", () => {
    const { call } = harness();
    call("c:1", "thing", "dict", "size");
    const r = call("c:1", "thing", "queue", "size");
    expect(r.code).toBe("ERR_PTC_SHARED_KIND");
    expect(r.replies[0]).toMatchObject({ message: expect.stringMatching(/shared dict.*as a queue/) });
  });
});

describe("shared queue", () => {
  it("is FIFO for items and for waiting consumers; a blocking get is answered by a later put", () => {
    const { call } = harness();
    const g1 = call("e:0", "q", "queue", "get");
    const g2 = call("e:1", "q", "queue", "get");
    expect(g1.answered || g2.answered).toBe(false);
    call("c:1", "q", "queue", "putMany", { parts: [v("a"), v("b"), v("c")] });
    expect(g1.value).toEqual(["a"]);
    expect(g2.value).toEqual(["b"]);
    expect(call("c:1", "q", "queue", "size").value).toBe(1);
    expect(call("e:0", "q", "queue", "getMany", { count: 10 }).value).toEqual(["c"]);
  });

  it("a full queue (maxsize) holds producers until consumers make room, in order", () => {
    const { call } = harness();
    const spec: OpenSpec = { kind: "queue", maxsize: 2 };
    const p = call("c:1", "q", spec, "putMany", { parts: [1, 2, 3, 4].map(v) });
    expect(p.answered).toBe(false);
    const p2 = call("c:2", "q", spec, "put", { parts: [v(5)] });
    expect(call("e:0", "q", spec, "getMany", { count: 3 }).value).toEqual([1, 2]);
    expect(p.value).toBe(4);
    expect(p2.answered).toBe(false);
    expect(call("e:0", "q", spec, "getMany", { count: 3 }).value).toEqual([3, 4]);
    expect(p2.value).toBe(1);
    expect(call("e:0", "q", spec, "get").value).toEqual([5]);
  });

  it("close fails waiting producers and later puts; consumers drain what is left, then get `closed`", () => {
    const { call } = harness();
    call("c:1", "q", "queue", "put", { parts: [v(1)] });
    call("c:1", "q", "queue", "close");
    expect(call("c:1", "q", "queue", "put", { parts: [v(2)] }).code).toBe("ERR_PTC_QUEUE_CLOSED");
    expect(call("e:0", "q", "queue", "get").value).toEqual([1]);
    expect(call("e:0", "q", "queue", "get").value).toEqual({ closed: true });
    const waiting = harness();
    const g = waiting.call("e:0", "q", "queue", "get");
    waiting.call("c:1", "q", "queue", "close");
    expect(g.value).toEqual({ closed: true });
  });

  it("an item taken with ack goes back to the front when its consumer dies before acknowledging", () => {
    const { store, call } = harness();
    call("c:1", "q", "queue", "putMany", { parts: [v("a"), v("b"), v("c")] });
    const taken = call("e:0", "q", "queue", "getMany", { count: 2, ack: true });
    const { tokens } = taken.replies[0]!.ok
      ? (taken.replies[0] as { value: { tokens: number[] } }).value
      : { tokens: [] };
    expect(tokens).toHaveLength(2);
    // The first is acknowledged, the second is not when engine 0 dies.
    expect(call("e:0", "q", "queue", "ack", { token: tokens[0]! }).code).toBe("ok");
    expect(call("e:1", "q", "queue", "ack", { token: tokens[1]! }).code).toBe("ERR_PTC_SHARED_VALUE");
    const waiter = call("e:1", "q", "queue", "getMany", { count: 5 });
    expect(waiter.value).toEqual(["c"]);
    store.holderGone("e:0");
    expect(call("e:1", "q", "queue", "getMany", { count: 5 }).value).toEqual(["b"]);
  });

  it("a waiting get of a holder that is gone is dropped, so no item is handed to the dead", () => {
    const { store, call } = harness();
    const dead = call("e:0", "q", "queue", "get");
    store.holderGone("e:0");
    const alive = call("e:1", "q", "queue", "get");
    call("c:1", "q", "queue", "put", { parts: [v(1)] });
    expect(dead.answered).toBe(false);
    expect(alive.value).toEqual([1]);
  });

  it("a get times out with a named error; a withdrawn get is answered as cancelled and takes nothing", () => {
    vi.useFakeTimers();
    const { store, call } = harness();
    const g = call("e:0", "q", "queue", "get", { timeout: 50 });
    vi.advanceTimersByTime(49);
    expect(g.answered).toBe(false);
    vi.advanceTimersByTime(1);
    expect(g.code).toBe("ERR_PTC_SHARED_TIMEOUT");
    const w = call("e:0", "q", "queue", "get");
    store.withdraw("e:0", w.rid);
    expect(w.code).toBe("ERR_PTC_SHARED_CANCELLED");
    call("c:1", "q", "queue", "put", { parts: [v(1)] });
    expect(call("c:1", "q", "queue", "size").value).toBe(1);
  });
});

describe("counters and arrays", () => {
  it("a counter adds atomically and answers the new value", () => {
    const { call } = harness();
    for (let i = 0; i < 500; i++) call(`e:${i % 4}`, "done", "counter", "add", { parts: [v(1)] });
    expect(call("c:1", "done", "counter", "get").value).toEqual([500]);
    expect(call("c:1", "done", "counter", "add").value).toEqual([501]);
  });

  it("an array is made from initial values or a kind and length; element updates are atomic and typed", () => {
    const { call } = harness();
    const spec: OpenSpec = { kind: "array" };
    expect(call("c:1", "arr", spec, "open", { parts: [v(Float64Array.from([5, 10, 15, 20, 25]))] }).value).toBe(true);
    // Opened again with other values: the existing array stays as it is.
    expect(call("c:2", "arr", spec, "open", { parts: [v(Float64Array.from([0]))] }).value).toBe(false);
    for (let i = 0; i < 5; i++) call(`e:${i % 2}`, "arr", spec, "update", { index: i, update: "mul", parts: [v(2)] });
    expect(call("c:1", "arr", { kind: "array" }, "read").value).toEqual([Float64Array.from([10, 20, 30, 40, 50])]);
    expect(call("c:1", "arr", { kind: "array" }, "write", { offset: 3, parts: [v([1, 2])] }).code).toBe("ok");
    expect(call("c:1", "arr", { kind: "array" }, "get", { index: 4 }).value).toEqual([2]);
    expect(call("c:1", "arr", { kind: "array" }, "get", { index: 5 }).code).toBe("ERR_PTC_SHARED_VALUE");
    const bytes = { kind: "array", arrayKind: "Uint8Array", length: 4 } as const;
    expect(call("c:1", "u8", bytes, "update", { index: 0, update: "sub", parts: [v(1)] }).value).toEqual([255]);
    expect(call("c:1", "u8", { kind: "array", arrayKind: "Int32Array" }, "length").code).toBe("ERR_PTC_SHARED_VALUE");
  });
});

describe("locks, semaphores, events, barriers", () => {
  it("a lock is granted first come, first served; a release names its hold; a dead holder's lock is freed", () => {
    const { store, call } = harness();
    const a = call("e:0", "db", "lock", "acquire");
    const b = call("e:1", "db", "lock", "acquire");
    const c = call("c:1", "db", "lock", "acquire");
    const tokenA = a.value as number;
    expect(b.answered || c.answered).toBe(false);
    expect(call("e:1", "db", "lock", "release", { token: 999 }).code).toBe("ERR_PTC_LOCK_NOT_HELD");
    call("e:0", "db", "lock", "release", { token: tokenA });
    expect(typeof b.value).toBe("number");
    store.holderGone("e:1"); // dies holding it
    expect(typeof c.value).toBe("number");
    expect(call("e:0", "db", "lock", "release", { token: tokenA }).code).toBe("ERR_PTC_LOCK_NOT_HELD");
  });

  it("a semaphore admits `permits` holders; opening it with other permits is an error", () => {
    const { call } = harness();
    const spec: OpenSpec = { kind: "semaphore", permits: 2 };
    const holds = [call("e:0", "slots", spec, "acquire"), call("e:1", "slots", spec, "acquire")];
    const third = call("e:2", "slots", spec, "acquire");
    expect(holds.every((h) => h.answered)).toBe(true);
    expect(third.answered).toBe(false);
    call("e:0", "slots", spec, "release", { token: holds[0]!.value as number });
    expect(third.answered).toBe(true);
    expect(call("c:1", "slots", { kind: "semaphore", permits: 3 }, "available").code).toBe("ERR_PTC_SHARED_VALUE");
  });

  it("an event wakes every waiter when set; a wait times out with a named error", () => {
    vi.useFakeTimers();
    const { call } = harness();
    const waits = [call("e:0", "go", "event", "wait"), call("e:1", "go", "event", "wait")];
    const late = call("e:2", "other", "event", "wait", { timeout: 10 });
    call("c:1", "go", "event", "set");
    expect(waits.map((w) => w.value)).toEqual([true, true]);
    expect(call("e:3", "go", "event", "wait").value).toBe(true);
    vi.advanceTimersByTime(10);
    expect(late.code).toBe("ERR_PTC_SHARED_TIMEOUT");
  });

  it("a barrier releases a round when all parties arrive; a party that dies breaks the round for the others", () => {
    const { store, call } = harness();
    const spec: OpenSpec = { kind: "barrier", parties: 3 };
    const round = [call("e:0", "b", spec, "wait"), call("e:1", "b", spec, "wait")];
    expect(round.some((r) => r.answered)).toBe(false);
    const last = call("e:2", "b", spec, "wait");
    expect([...round, last].map((r) => (r.value as { index: number }).index)).toEqual([0, 1, 2]);
    const next = [call("e:0", "b", spec, "wait"), call("e:1", "b", spec, "wait")];
    store.holderGone("e:1");
    expect(next[0]!.code).toBe("ERR_PTC_BARRIER_BROKEN");
    expect(next[1]!.answered).toBe(false);
  });
});

describe("memory", () => {
  it("storing past the limit is a named error; deleting an object gives its memory back", () => {
    const { store, call } = harness(10_000);
    const big = v(new Uint8Array(6_000));
    expect(call("c:1", "d", "dict", "set", { key: "a", parts: [big] }).code).toBe("ok");
    const over = call("c:1", "q", "queue", "put", { parts: [big] });
    expect(over.code).toBe("ERR_PTC_SHARED_LIMIT");
    expect(over.replies[0]).toMatchObject({ message: expect.stringContaining("--max-shared-mb") });
    expect(store.budget.used).toBeGreaterThan(6_000);
    expect(call("c:1", "d", "dict", "destroy").value).toBe(true);
    expect(store.budget.used).toBe(0);
    expect(call("c:1", "q", "queue", "put", { parts: [big] }).code).toBe("ok");
    expect(store.describe()).toEqual([{ name: "q", kind: "queue", size: 1, bytes: expect.any(Number), waiting: 0 }]);
  });
});

describe("lifetime", () => {
  it("an object its last user leaves idle goes with it; one holding data stays until deleted", () => {
    const { store, call } = harness();
    call("e:0", "per-run-lock", "lock", "acquire");
    call("e:0", "go", "event", "isSet");
    call("c:1", "kept", "dict", "set", { key: "a", parts: [v(1)] });
    call("e:0", "kept", "dict", "get", { key: "a" });
    call("c:1", "drained", "queue", "put", { parts: [v(1)] });
    call("e:0", "drained", "queue", "get");
    expect(
      store
        .describe()
        .map((o) => o.name)
        .sort(),
    ).toEqual(["drained", "go", "kept", "per-run-lock"]);
    // The lock's holder leaves: its hold is freed, and no one else used it.
    store.holderGone("e:0");
    expect(
      store
        .describe()
        .map((o) => o.name)
        .sort(),
    ).toEqual(["drained", "kept"]);
    // Its last user gone, the empty queue goes; the dict keeps its data.
    store.holderGone("c:1");
    expect(store.describe().map((o) => o.name)).toEqual(["kept"]);
    expect(store.budget.used).toBeGreaterThan(0);
    expect(call("c:2", "kept", "dict", "destroy").value).toBe(true);
    expect(store.budget.used).toBe(0);
  });
});
