import { QueueClosedError } from "../shared-state-errors.js";
import { SharedHandle } from "./handle.js";
import { pack, unpack, waitArgs } from "./values.js";
import type { SharedTransport, WaitOptions } from "./wire.js";

/** An item taken with `ack: true`: acknowledge it once handled, or it goes back to the queue if you die first. */
export interface AckedItem<T> {
  readonly value: T;
  ack(): Promise<void>;
}

/** Most items one step of an iteration takes (while the loop body is quick compared to a round trip). */
const MAX_BATCH = 256;

/**
 * A FIFO queue held by the controller (Python's `Manager().Queue()`, across hosts). Blocking
 * calls wait at the controller, first come first served; `close` ends every consumer's iteration
 * once the queue is empty.
 */
export class SharedQueue<T = unknown> extends SharedHandle {
  constructor(transport: SharedTransport, name: string, options: { maxsize?: number } = {}) {
    super(transport, name, options.maxsize ? { kind: "queue", maxsize: options.maxsize } : { kind: "queue" });
  }

  /** Puts an item; waits for room in a full queue (`maxsize`). */
  async put(value: T, options?: WaitOptions): Promise<void> {
    await this.call("put", waitArgs(options), [pack(value, "queue.put")], options?.signal);
  }

  /** Puts items in order, as room allows; resolves once all are in. */
  async putMany(values: Iterable<T>, options?: WaitOptions): Promise<void> {
    const parts = [...values].map((v, i) => pack(v, `queue.putMany[${i}]`));
    await this.call("putMany", waitArgs(options), parts, options?.signal);
  }

  /** Takes the next item, waiting for one; a closed, empty queue throws `QueueClosedError`. */
  get(options?: WaitOptions & { ack?: false }): Promise<T>;
  get(options: WaitOptions & { ack: true }): Promise<AckedItem<T>>;
  async get(options?: WaitOptions & { ack?: boolean }): Promise<T | AckedItem<T>> {
    const ack = options?.ack === true;
    const a = await this.call("get", waitArgs(options, ack ? { ack } : {}), [], options?.signal);
    const v = a.value as { closed?: boolean; tokens?: number[] };
    if (v.closed) throw new QueueClosedError(`queue \`${this.name}\` is closed and empty.`);
    const value = unpack<T>(a.parts[0]);
    return ack ? this.acked(value, v.tokens?.[0] as number) : value;
  }

  /** Takes up to `n` items: those there now, or, if none, the first to come; `[]` once closed and empty. */
  async getMany(n: number, options?: WaitOptions): Promise<T[]> {
    const a = await this.call("getMany", waitArgs(options, { count: n }), [], options?.signal);
    return (a.value as { closed?: boolean }).closed ? [] : a.parts.map((p) => unpack<T>(p));
  }

  /** Items in the queue now (not counting those taken and not yet acknowledged). */
  async size(): Promise<number> {
    return (await this.call("size")).value as number;
  }

  /** No more puts; consumers drain what is left, then their iteration ends. */
  async close(): Promise<void> {
    await this.call("close");
  }

  /**
   * Every item until the queue is closed and empty. While the loop body is quick compared to a
   * round trip to the controller, it takes items in batches (so a fast consumer is not paced by
   * round trips); a slow body takes one at a time, leaving the rest to other consumers.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    let batch = 1;
    for (;;) {
      const asked = Date.now();
      const items = await this.getMany(batch);
      if (items.length === 0) return;
      const got = Date.now();
      for (const x of items) yield x;
      const perItem = (Date.now() - got) / items.length;
      const roundTrip = Math.max(got - asked, 0.1);
      batch = perItem * 4 < roundTrip ? Math.min(MAX_BATCH, batch * 2) : Math.max(1, Math.floor(batch / 2));
    }
  }

  private acked(value: T, token: number): AckedItem<T> {
    return {
      value,
      ack: async () => {
        await this.call("ack", { token });
      },
    };
  }
}
