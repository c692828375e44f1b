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
      out[i] =
        r !== null && typeof r === "object" && typeof (r as PromiseLike<unknown>).then === "function"
          ? await (r as PromiseLike<unknown>)
          : r;
    } catch (err) {
      throw new MapItemFailure(i, err);
    }
  }
  return out;
}
