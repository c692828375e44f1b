import { describe, expect, it } from "vitest";
import { CompositeError, RemoteError, SerializationError, UndefinedNameError } from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { failure } from "./helpers/lb.js";

// Names that tasks find on the engines, through `scope` or `push`; declared for the type checker only.
declare const isPrime: (n: number) => boolean;
declare const countPrimes: (n: number) => number;
declare const scopedPrime: (n: number) => boolean;
declare const utils: { isPrime: (n: number) => boolean; base: number };
declare const Point: new (x: number, y: number) => { norm(): number };
declare const belowLimit: (n: number) => boolean;
declare const definedByExecute: () => string;

// The helpers a user writes next to their code, tested in one process first: plain functions.
function isPrimeLocal(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}
/** Calls `isPrime` by its engine-side name: pushed or scoped alongside. */
function countPrimesLocal(n: number): number {
  let c = 0;
  for (let i = 0; i < n; i++) if (isPrime(i)) c++;
  return c;
}
class PointLocal {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

/** The rejection (or synchronous throw) of `f`, which must fail. */

describe("shipping functions and values", () => {
  const ctx = useCluster({ n: 2 });

  it("execute with a function as its completion value succeeds on every engine, returning what the REPL would print", async () => {
    const dv = ctx.rc.view();
    const out = await dv.execute("globalThis.definedByExecute = function definedByExecute() { return 'here'; }");
    expect(out).toEqual(ctx.rc.ids.map(() => "[Function: definedByExecute]"));
    // The code ran: the function is defined on every engine.
    expect(await dv.apply(() => definedByExecute())).toEqual(ctx.rc.ids.map(() => "here"));
    // A class instance as the completion value: described, not refused.
    expect(await dv.execute("class Made { constructor() { this.x = 1; } }; new Made()")).toEqual(
      ctx.rc.ids.map(() => "Made { x: 1 }"),
    );
    // A value that can be sent still arrives as itself.
    expect(await dv.execute("({ a: [1, 2], b: 'c' })")).toEqual(ctx.rc.ids.map(() => ({ a: [1, 2], b: "c" })));
    // The description is bounded.
    const long = (await ctx.rc.engine(0).execute("const big = { f() {}, data: 'x'.repeat(100000) }; big")) as string;
    expect(typeof long).toBe("string");
    expect(long.length).toBeLessThanOrEqual(2_001);
  });

  it("returning a function → SerializationError (not a RemoteError) naming the path and the function", async () => {
    const direct = await failure(() => ctx.rc.engine(0).apply(() => function handler() {}));
    expect(direct).toBeInstanceOf(SerializationError);
    expect(direct).not.toBeInstanceOf(RemoteError);
    const d = direct as SerializationError;
    expect(d.code).toBe("ERR_PTC_UNSERIALIZABLE");
    expect(d.path).toBe("result");
    expect(d.engineId).toBe(0);
    expect(d.message).toContain("`handler`");
    expect(d.message).toMatch(/Return data/);

    const nested = await failure(() => ctx.rc.loadBalancedView().apply(() => ({ ok: 1, cb: () => 2 })));
    expect(nested).toBeInstanceOf(SerializationError);
    expect((nested as SerializationError).path).toBe("result.cb");

    // In a map: the item whose result could not travel, by its index in the input.
    const inMap = await failure(() =>
      ctx.rc.loadBalancedView().map((x: number) => (x === 3 ? { cb: () => x } : x), [0, 1, 2, 3, 4], { chunkSize: 5 }),
    );
    expect(inMap).toBeInstanceOf(SerializationError);
    expect((inMap as SerializationError).path).toBe("result.cb");
    expect((inMap as SerializationError).item).toBe(3);

    // On a DirectView: one SerializationError per engine.
    const all = await failure(() => ctx.rc.view().apply(() => () => 1));
    expect(all).toBeInstanceOf(CompositeError);
    for (const e of (all as CompositeError).errors) expect(e).toBeInstanceOf(SerializationError);
  });

  it("a class instance is refused both ways, naming the class and the path and saying what works", async () => {
    const back = await failure(() =>
      ctx.rc.engine(1).apply(() => {
        class Account {
          balance = 5;
          deposit(n: number) {
            this.balance += n;
          }
        }
        return { owner: "ann", account: new Account() };
      }),
    );
    expect(back).toBeInstanceOf(SerializationError);
    const b = back as SerializationError;
    expect(b.path).toBe("result.account");
    expect(b.engineId).toBe(1);
    expect(b.message).toContain("class `Account`");
    expect(b.message).toContain("{ ...obj }");

    // The same value the other way: refused synchronously, before anything is sent.
    let thrown: unknown;
    try {
      void ctx.rc.engine(1).apply((p: PointLocal) => p.x, new PointLocal(3, 4));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SerializationError);
    expect((thrown as SerializationError).path).toBe("args[0]");
    expect((thrown as SerializationError).message).toContain("class `PointLocal`");
    expect((thrown as SerializationError).message).toContain("push({ PointLocal })");

    // What the messages suggest works: its fields, and objects without a prototype.
    expect(await ctx.rc.engine(1).apply((p: { x: number; y: number }) => p.x + p.y, { ...new PointLocal(3, 4) })).toBe(
      7,
    );
    expect(await ctx.rc.engine(1).apply(() => Object.assign(Object.create(null) as object, { k: 1 }))).toEqual({
      k: 1,
    });
  });

  it("push({ isPrime }) ships the function as source; tasks call it, and a pushed helper calls another", async () => {
    const dv = ctx.rc.view();
    await dv.push({ isPrime: isPrimeLocal, countPrimes: countPrimesLocal });
    expect(await dv.apply((n: number) => isPrime(n), 7)).toEqual(ctx.rc.ids.map(() => true));
    // countPrimes calls isPrime, which it finds in the engine namespace.
    expect(await dv.apply(() => countPrimes(20))).toEqual(ctx.rc.ids.map(() => 8));
    // The load-balanced pool sees the same namespace.
    expect(await ctx.rc.loadBalancedView().map((n: number) => isPrime(n), [2, 3, 4, 5])).toEqual([
      true,
      true,
      false,
      true,
    ]);
  });

  it("with({ scope: { … } }) ships functions too; scoped helpers see each other and the namespace", async () => {
    const lb = ctx.rc.loadBalancedView().with({ scope: { scopedPrime: isPrimeLocal } });
    expect(await lb.apply((n: number) => scopedPrime(n), 11)).toBe(true);
    expect(await lb.map((n: number) => scopedPrime(n), [9, 13])).toEqual([false, true]);
    // A scoped helper that calls another scoped name.
    const dv = ctx.rc.view().with({ scope: { countPrimes: countPrimesLocal, isPrime: (n: number) => n === 2 } });
    expect(await dv.apply(() => countPrimes(10))).toEqual(ctx.rc.ids.map(() => 1));
  });

  it("functions in arguments and nested in objects travel as source", async () => {
    expect(await ctx.rc.engine(0).apply((f: (x: number) => boolean, x: number) => f(x), isPrimeLocal, 7)).toBe(true);
    expect(
      await ctx.rc
        .loadBalancedView()
        .map((f: (x: number) => boolean, x: number) => f(x), [isPrimeLocal, isPrimeLocal], [4, 5]),
    ).toEqual([false, true]);
    const dv = ctx.rc.view();
    await dv.push({ utils: { isPrime: isPrimeLocal, base: 10 } });
    expect(await dv.apply(() => utils.isPrime(utils.base + 3))).toEqual(ctx.rc.ids.map(() => true));
    // The same function twice in one value arrives as one function, as structured clone keeps references.
    expect(
      await ctx.rc
        .engine(0)
        .apply((a: unknown, b: unknown) => typeof a === "function" && a === b, isPrimeLocal, isPrimeLocal),
    ).toBe(true);
    // A class travels as source too, methods included.
    await dv.push({ Point: PointLocal });
    expect(await dv.apply(() => new Point(3, 4).norm())).toEqual(ctx.rc.ids.map(() => 5));
  });

  it("a pushed function that closes over a local fails with UndefinedNameError naming the function, the name and what works", async () => {
    const limit = 10;
    const belowLimitLocal = (n: number) => n < limit;
    await ctx.rc.view().push({ belowLimit: belowLimitLocal });
    const err = await failure(() => ctx.rc.engine(0).apply(() => belowLimit(3)));
    expect(err).toBeInstanceOf(UndefinedNameError);
    const e = err as UndefinedNameError;
    expect(e.undefinedName).toBe("limit");
    expect(e.shippedFunction).toEqual({ name: "belowLimitLocal", path: "namespace.belowLimit" });
    expect(e.message).toContain("`limit`");
    expect(e.message).toContain("`belowLimitLocal`");
    expect(e.message).toContain("namespace.belowLimit");
    expect(e.message).toContain("moduleFunction");
    expect(e.message).toContain("execute");
    // The advice works: push the missing name.
    await ctx.rc.engine(0).push({ limit });
    expect(await ctx.rc.engine(0).apply(() => belowLimit(3))).toBe(true);
  });

  it("a built-in or bound function in push → SerializationError naming it, before anything is sent", async () => {
    let thrown: unknown;
    try {
      void ctx.rc.view().push({ biggest: Math.max });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SerializationError);
    const e = thrown as SerializationError;
    expect(e.path).toBe("namespace.biggest");
    expect(e.message).toContain("`max`");
    expect(e.message).toMatch(/built-in or bound/);
    expect(e.message).toContain("execute");
    expect(await ctx.rc.view().execute("typeof biggest")).toEqual(ctx.rc.ids.map(() => "undefined"));

    let bound: unknown;
    try {
      void ctx.rc.engine(0).apply((f: () => boolean) => f(), isPrimeLocal.bind(null, 3));
    } catch (err) {
      bound = err;
    }
    expect(bound).toBeInstanceOf(SerializationError);
    expect((bound as SerializationError).path).toBe("args[0]");
    expect((bound as SerializationError).message).toContain("`bound isPrimeLocal`");
  });
});
