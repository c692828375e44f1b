import { MapItemFailure } from "./failure.js";

/** A map chunk: `fn` over each argument list, one after the other; an item that throws fails the chunk, naming its index. */
export async function mapItems(
  fn: (...args: unknown[]) => unknown,
  argLists: unknown[][],
  signal: AbortSignal | undefined,
): Promise<unknown[]> {
  const out = new Array<unknown>(argLists.length);
  for (let i = 0; i < argLists.length; i++) {
    // Cancelled or timed out: the items left must not run (what is reported is the verdict).
    if (signal?.aborted) throw signal.reason;
    try {
      const r = fn(...(argLists[i] as unknown[]));
      // A plain value is taken as it is: an `await` would cost each item a turn of the microtask queue.
      out[i] = isThenable(r) ? await r : r;
    } catch (err) {
      throw new MapItemFailure(i, err);
    }
  }
  return out;
}

/** A promise, or anything with a `then` to await. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function"
  );
}
