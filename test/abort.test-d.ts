import { describe, expectTypeOf, test } from "vitest";
import type { AbortSummary, Client, MapResult } from "@ptcluster/client";

// Type tests only (typecheck.include in vitest.config.ts): timeout and signal on every view, and
// the two forms of rc.abort.
declare const rc: Client;
declare const signal: AbortSignal;

describe("timeout and signal on DirectView and EngineView", () => {
  test("with() and map's trailing options take them", () => {
    rc.view().with({ timeout: 1_000, signal });
    rc.engine(0).with({ timeout: 1_000, signal, scope: { k: 1 } });
    expectTypeOf(rc.view().map((x: number) => x * 2, [1, 2], { timeout: 100, signal })).toEqualTypeOf<
      MapResult<number>
    >();
    // @ts-expect-error `retries` is the load-balanced view's
    rc.view().with({ retries: 1 });
    // @ts-expect-error a signal is an AbortSignal
    rc.engine(0).with({ signal: true });
  });
});

describe("rc.abort", () => {
  test("results, ids and msg ids: nothing to await; a selector: what the controller cancelled", () => {
    const ar = rc.view().apply(() => 1);
    expectTypeOf(rc.abort()).toEqualTypeOf<void>();
    expectTypeOf(rc.abort([ar, 3, ar.msgIds[0] as string])).toEqualTypeOf<void>();
    expectTypeOf(rc.abort({ engines: [0], all: false })).toEqualTypeOf<Promise<AbortSummary>>();
    expectTypeOf(rc.abort({ tasks: ar.msgIds })).resolves.toEqualTypeOf<AbortSummary>();
    // @ts-expect-error engines are numbers
    void rc.abort({ engines: ["0"] });
  });
});
