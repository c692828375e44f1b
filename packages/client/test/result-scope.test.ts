import { describe, expect, it } from "vitest";
import { AsyncResult, pendingMetadata, type TaskMetadata } from "../src/results/async-result.js";
import { MapResult } from "../src/results/map-result.js";
import { withResultScope, type ScopedResult } from "../src/results/result-scope.js";

// The factories of views are @internal: stripped from the types that the type check of tests sees.
const create = (
  AsyncResult as unknown as { create(executor: () => void, metadata: TaskMetadata[]): AsyncResult<number> }
).create.bind(AsyncResult);
const openMap = (
  MapResult as unknown as {
    open(init: {
      metadata: TaskMetadata[];
      ids: number[];
      clientId: string;
      length: number;
      ordered: boolean;
      onAbort: () => void;
    }): { result: MapResult<number> };
  }
).open.bind(MapResult);

/** A result that never settles on its own, as a view makes one. */
function pending(): AsyncResult<number> {
  return create(() => undefined, [pendingMetadata(0)]);
}

describe("withResultScope", () => {
  it("hands over every result made in its async context: directly, after an await, in a timer", async () => {
    const seen: ScopedResult[] = [];
    const made: ScopedResult[] = [];
    const outside = pending();
    await withResultScope(
      (r) => seen.push(r),
      async () => {
        made.push(pending());
        await Promise.resolve();
        made.push(pending());
        await new Promise<void>((resolve) =>
          setTimeout(() => {
            made.push(pending());
            resolve();
          }, 1),
        );
      },
    );
    expect(seen).toEqual(made);
    expect(seen).toHaveLength(3);
    expect(seen).not.toContain(outside);
    // Once out of the scope, results go nowhere.
    pending();
    expect(seen).toHaveLength(3);
  });

  it("a map result reports itself once, as the map it is", () => {
    const seen: ScopedResult[] = [];
    const { result } = withResultScope(
      (r) => seen.push(r),
      () =>
        openMap({
          metadata: [],
          ids: [],
          clientId: "",
          length: 3,
          ordered: true,
          onAbort: () => undefined,
        }),
    );
    expect(seen).toEqual([result]);
    expect(seen[0]).toBeInstanceOf(MapResult);
  });

  it("nested scopes: a result goes to the innermost only", () => {
    const outer: ScopedResult[] = [];
    const inner: ScopedResult[] = [];
    withResultScope(
      (r) => outer.push(r),
      () => {
        pending();
        withResultScope(
          (r) => inner.push(r),
          () => pending(),
        );
      },
    );
    expect(outer).toHaveLength(1);
    expect(inner).toHaveLength(1);
    expect(inner[0]).not.toBe(outer[0]);
  });

  it("a scope's callback that throws does not break the call that made the result", () => {
    const r = withResultScope(
      () => {
        throw new Error("tool bug");
      },
      () => pending(),
    );
    expect(r).toBeInstanceOf(AsyncResult);
    expect(r.ready()).toBe(false);
  });
});
