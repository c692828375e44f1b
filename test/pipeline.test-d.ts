import { describe, expectTypeOf, test } from "vitest";
import type { Client, Pipeline, StageStats } from "@ptcluster/client";

// Type tests only: vitest type-checks this file (typecheck.include in vitest.config.ts) and never runs it.
declare const rc: Client;

describe("rc.pipeline", () => {
  test("each stage's output type follows its function; filter keeps the type; flatMap flattens", () => {
    async function* docs() {
      yield { id: 1, text: "a b" };
    }
    const p = rc.pipeline(docs());
    expectTypeOf(p).toEqualTypeOf<Pipeline<{ id: number; text: string }>>();
    const words = p.map((d) => d.text.split(" ")).filter((w) => w.length > 0);
    expectTypeOf(words).toEqualTypeOf<Pipeline<string[]>>();
    expectTypeOf(words.flatMap((w) => w)).toEqualTypeOf<Pipeline<string>>();
    expectTypeOf(
      words.flatMap(async function* (w) {
        yield* w;
      }),
    ).toEqualTypeOf<Pipeline<string>>();
    expectTypeOf(rc.pipeline([1, 2]).map(async (x) => String(x))).toEqualTypeOf<Pipeline<string>>();
    expectTypeOf(
      rc
        .pipeline([1])
        .map((x) => x)
        .toArray(),
    ).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(rc.pipeline([1]).stats()).toEqualTypeOf<StageStats[]>();

    // @ts-expect-error a stage's function takes the previous stage's output
    rc.pipeline([1]).map((s: string) => s.length);
    // @ts-expect-error flatMap's function returns an iterable
    rc.pipeline([1]).flatMap((x) => x * 2);
    // @ts-expect-error unknown stage option
    rc.pipeline([1]).map((x) => x, { workers: 2 });
    // @ts-expect-error onError is "fail" or "skip"
    rc.pipeline([1], { onError: "ignore" });
  });
});
