import { encodeValue, packParts, packStageReport, type Part, type StageKind } from "@ptcluster/protocol";
import { toFailure, type OriginOf } from "./failure.js";
import { isThenable } from "./map-items.js";

/**
 * Runs a pipeline stage's function over the items of one task, one after the other, and reports
 * each item on its own: its outputs (a `map`: one; a `flatMap`: each value of what it returned; a
 * `filter`: none, only whether the item goes on, since the controller still has it), or the error
 * it threw. One bad item does not fail the others; the task fails as a whole only when it is
 * cancelled or timed out (`signal`), or its executor dies.
 */
export async function runStage(
  kind: StageKind,
  fn: (item: unknown) => unknown,
  items: readonly Part[],
  decode: (item: Part) => unknown,
  originOf: OriginOf,
  signal: AbortSignal | undefined,
): Promise<Part> {
  const n = new Array<number>(items.length);
  const ms = new Array<number>(items.length);
  const out: Part[] = [];
  for (let i = 0; i < items.length; i++) {
    // Cancelled or timed out: the items left must not run (what is reported is the verdict).
    if (signal?.aborted) throw signal.reason;
    const mark = out.length;
    const t0 = performance.now();
    try {
      let r = fn(decode(items[i] as Part));
      if (isThenable(r)) r = await r;
      if (kind === "map") {
        out.push(encodeOutput(r));
        n[i] = 1;
      } else if (kind === "filter") n[i] = r ? 1 : 0;
      else n[i] = await pushEach(r, out);
    } catch (err) {
      // What the item had produced before it threw is not its output.
      out.length = mark;
      out.push(encodeValue(toFailure(err, originOf)));
      n[i] = -1;
    }
    ms[i] = performance.now() - t0;
  }
  return packParts([packStageReport({ n, ms }), ...out]);
}

function encodeOutput(v: unknown): Part {
  const { body, frames } = encodeValue(v, "result", undefined, { returned: true });
  return { body, frames };
}

/** The values of what a `flatMap` function returned (an iterable or async iterable, not a string). */
async function pushEach(r: unknown, out: Part[]): Promise<number> {
  let count = 0;
  if (r !== null && typeof r === "object" && Symbol.asyncIterator in r) {
    for await (const v of r as AsyncIterable<unknown>) {
      out.push(encodeOutput(v));
      count++;
    }
    return count;
  }
  if (typeof r === "string" || r === null || typeof r !== "object" || !(Symbol.iterator in r))
    throw new TypeError(
      `A flatMap stage's function must return an array or another iterable (a generator, a Set, an async iterable) of the items to pass on; it returned ${typeof r === "string" ? "a string" : r === null ? "null" : typeof r}. Wrap a single value in an array.`,
    );
  for (const v of r as Iterable<unknown>) {
    out.push(encodeOutput(v));
    count++;
  }
  return count;
}
