import { describe, expectTypeOf, test } from "vitest";
import type {
  AsyncResult,
  Client,
  DirectView,
  EngineView,
  LoadBalancedView,
  MapResult,
  MapRun,
} from "@ptcluster/client";

// Type tests only: vitest type-checks this file (typecheck.include in vitest.config.ts) and never runs it.
declare const rc: Client;
const dv: DirectView = rc.view();
const one: EngineView = rc.engine(0);
const lb: LoadBalancedView = rc.loadBalancedView();

describe("DirectView.apply", () => {
  test("infers one result per engine and checks the arguments against the parameters", () => {
    const ar = dv.apply((a: number, b: string) => `${b}${a}`.length > 1, 1, "x");
    expectTypeOf(ar).toEqualTypeOf<AsyncResult<boolean[]>>();
    expectTypeOf(dv.apply((a: number, b: string) => ({ a, b }), 2, "y")).toEqualTypeOf<
      AsyncResult<{ a: number; b: string }[]>
    >();
    expectTypeOf(dv.applySync((a: number) => a * 2, 21)).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(dv.apply(() => "no args")).toEqualTypeOf<AsyncResult<string[]>>();

    // @ts-expect-error arguments in the wrong order
    dv.apply((a: number, b: string) => a + b.length, "x", 1);
    // @ts-expect-error a missing argument
    dv.apply((a: number, b: string) => a + b.length, 1);
    // @ts-expect-error one argument too many
    dv.apply((a: number) => a, 1, 2);
    // @ts-expect-error wrong argument type
    void dv.applySync((a: number) => a, "1");
  });

  test("optional and rest parameters", () => {
    expectTypeOf(dv.apply((a: number, b?: string) => b ?? a, 1)).toEqualTypeOf<AsyncResult<(string | number)[]>>();
    expectTypeOf(dv.apply((...xs: number[]) => xs.length, 1, 2, 3)).toEqualTypeOf<AsyncResult<number[]>>();
    // @ts-expect-error a rest element of the wrong type
    dv.apply((...xs: number[]) => xs.length, 1, "2");
  });

  test("async functions resolve to the awaited type", () => {
    expectTypeOf(dv.apply(async (a: number) => a > 0, 1)).toEqualTypeOf<AsyncResult<boolean[]>>();
    expectTypeOf(dv.apply(async () => Promise.resolve(new Map<string, number>()))).toEqualTypeOf<
      AsyncResult<Map<string, number>[]>
    >();
    expectTypeOf(one.apply(async () => "s")).toEqualTypeOf<AsyncResult<string>>();
  });

  test("awaiting an AsyncResult gives the values", async () => {
    const values = await dv.apply((a: number) => a, 1);
    expectTypeOf(values).toEqualTypeOf<number[]>();
    const single = await one.apply((s: string) => s.length, "abc");
    expectTypeOf(single).toEqualTypeOf<number>();
    expectTypeOf(dv.apply((a: number) => a, 1).get(100)).toEqualTypeOf<Promise<number[]>>();
  });
});

describe("EngineView.apply (rc.engine(i))", () => {
  test("returns a scalar AsyncResult<R>", () => {
    expectTypeOf(one.apply((a: number, b: string) => ({ n: a, s: b }), 1, "z")).toEqualTypeOf<
      AsyncResult<{ n: number; s: string }>
    >();
    expectTypeOf(rc.engine(3).applySync(() => 1n)).toEqualTypeOf<Promise<bigint>>();
    expectTypeOf(one.apply(() => 1)).not.toEqualTypeOf<AsyncResult<number[]>>();
    // @ts-expect-error wrong argument type
    one.apply((a: number) => a, "1");
    // @ts-expect-error missing argument
    one.apply((a: number, b: number) => a + b, 1);
  });
});

describe("map and starmap", () => {
  test("map infers a MapResult<R>: an AsyncResult<R[]> that iterates R", () => {
    expectTypeOf(dv.map((x: number) => x.toFixed(1), [1, 2, 3])).toEqualTypeOf<MapResult<string>>();
    expectTypeOf(dv.map(async (x: string) => x.length, ["a"])).toEqualTypeOf<MapResult<number>>();
    expectTypeOf(one.map((x: number) => x > 1, new Set([1, 2]))).toEqualTypeOf<MapResult<boolean>>();
    expectTypeOf(dv.map((x: number) => x, [1])).toExtend<AsyncResult<number[]>>();
    expectTypeOf(dv.map((x: number) => x, [1])).toExtend<AsyncIterable<number>>();
    // @ts-expect-error items of the wrong type
    dv.map((x: number) => x, ["a", "b"]);
  });

  test("starmap checks each list's element type", () => {
    expectTypeOf(dv.map((n: number, s: string) => s.repeat(n), [1, 2], ["a", "b"])).toEqualTypeOf<MapResult<string>>();
    expectTypeOf(
      dv.map((a: number, b: bigint, c: boolean) => (c ? BigInt(a) + b : b), [1], [2n], [true]),
    ).toEqualTypeOf<MapResult<bigint>>();
    // @ts-expect-error the second list has the wrong element type
    dv.map((n: number, s: string) => s.repeat(n), [1, 2], [3, 4]);
    // @ts-expect-error the first list has the wrong element type
    dv.map((n: number, s: string) => s.repeat(n), ["1"], ["a"]);
    // @ts-expect-error a list is missing
    dv.map((n: number, s: string) => s.repeat(n), [1, 2]);
    // @ts-expect-error the second list has the wrong element type, on one engine too
    one.map((n: number, s: string) => s.repeat(n), [1], [2]);
  });
});

describe("map results behave like promises and iterate (both views)", () => {
  test("lb.map and dv.map: awaited R[], iterated R, then/catch/finally and the AsyncResult methods", async () => {
    const m = lb.map(async (x: number) => ({ y: x }), [1, 2]);
    expectTypeOf(m).toEqualTypeOf<MapResult<{ y: number }>>();
    expectTypeOf(await m).toEqualTypeOf<{ y: number }[]>();
    for await (const v of m) expectTypeOf(v).toEqualTypeOf<{ y: number }>();
    for await (const v of dv.map((s: string) => s.length, ["a"])) expectTypeOf(v).toEqualTypeOf<number>();
    // Wherever a Promise is expected, a map's result (or any AsyncResult) is one.
    expectTypeOf(m).toExtend<Promise<{ y: number }[]>>();
    expectTypeOf(dv.map((x: number) => x, [1])).toExtend<Promise<number[]>>();
    expectTypeOf(dv.apply(() => 1)).toExtend<Promise<number[]>>();
    expectTypeOf(m.catch(() => 0)).toEqualTypeOf<Promise<{ y: number }[] | number>>();
    expectTypeOf(m.finally(() => undefined)).toEqualTypeOf<Promise<{ y: number }[]>>();
    expectTypeOf(m.get(100)).toEqualTypeOf<Promise<{ y: number }[]>>();
    expectTypeOf(m.ready()).toEqualTypeOf<boolean>();
    expectTypeOf(m.successful()).toEqualTypeOf<boolean | undefined>();
    expectTypeOf(m.wait()).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(m.progress).toEqualTypeOf<number>();
    expectTypeOf(m.length).toEqualTypeOf<number | undefined>();
    expectTypeOf(await Promise.all([m, dv.map((x: number) => `${x}`, [1])])).toEqualTypeOf<
      [{ y: number }[], string[]]
    >();
    expectTypeOf(lb.starmap((a: number, b: string) => b.repeat(a), [[1, "x"]])).toEqualTypeOf<MapResult<string>>();
    // @ts-expect-error items of the wrong type
    lb.map((x: number) => x, ["a"]);
  });

  test("imap is a one-pass stream, not a promise", () => {
    const s = lb.imap((x: number) => x * 2, [1, 2]);
    expectTypeOf(s).toEqualTypeOf<MapRun<number>>();
    expectTypeOf(s).toExtend<AsyncIterable<number>>();
    expectTypeOf(s).not.toHaveProperty("then");
  });
});

describe("the public types carry nothing internal", () => {
  test("a Client offers no submit, flush, release, cancel, checkSize, assertOpen or open", () => {
    // @ts-expect-error internal to the client's session
    void rc.submit;
    // @ts-expect-error internal to the client's session
    rc.flush();
    // @ts-expect-error internal to the client's session
    rc.release(1);
    // @ts-expect-error internal to the client's session (public cancelling is `rc.abort()`)
    rc.cancel([1]);
    // @ts-expect-error internal to the client's session
    void rc.checkSize;
    // @ts-expect-error internal to the client's session
    rc.assertOpen();
    // @ts-expect-error internal to the client's session
    void rc.open(1000);
    expectTypeOf(rc.state).toEqualTypeOf<"connecting" | "connected" | "closed" | "hub-lost">();
  });

  test("clients, views, results and streams come from calls, not constructors", () => {
    type Ctor = abstract new (...args: never[]) => unknown;
    // Private or protected constructors: none of them is a constructor type from outside.
    expectTypeOf<typeof Client>().not.toMatchTypeOf<Ctor>();
    expectTypeOf<typeof DirectView>().not.toMatchTypeOf<Ctor>();
    expectTypeOf<typeof EngineView>().not.toMatchTypeOf<Ctor>();
    expectTypeOf<typeof LoadBalancedView>().not.toMatchTypeOf<Ctor>();
    expectTypeOf<typeof AsyncResult>().not.toMatchTypeOf<Ctor>();
    expectTypeOf<typeof MapRun>().not.toMatchTypeOf<Ctor>();
  });
});
