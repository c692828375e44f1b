import {
  Deque,
  encodedSize,
  QueueClosedError,
  SharedTimeoutError,
  SharedValueError,
  type Part,
  type PtclusterError,
} from "@ptcluster/protocol";
import { answer, refuse, type Call, type Holder, type StoreArgs, type SharedObject } from "./call.js";
import type { MemoryBudget } from "./budget.js";
import { WaitLine, type Waiter } from "./wait-line.js";

type Getter = { readonly count: number; readonly ack: boolean };
type Putter = { readonly items: readonly Part[]; next: number };
type Taken = { readonly holder: Holder; readonly item: Part; readonly seq: number };

/**
 * A shared FIFO queue. Items and waiting calls are both served first come, first served: a `get`
 * waits at the controller until an item arrives (never by polling), a `put` into a full queue
 * (`maxsize`) waits for room. A `get` with `ack` keeps its item for its holder until acknowledged;
 * if the holder dies first, the item goes back to the front of the queue. After `close`, puts
 * fail and gets drain what is left, then answer `closed` (iteration ends).
 */
export class SharedQueue implements SharedObject {
  readonly kind = "queue";
  private readonly items = new Deque<{ item: Part; seq: number }>();
  private readonly getters: WaitLine<Getter>;
  private readonly putters: WaitLine<Putter>;
  private readonly taken = new Map<number, Taken>();
  private nextToken = 1;
  private seq = 0;
  private bytes = 0;
  private closed = false;

  constructor(
    private readonly name: string,
    private readonly maxsize: number,
    private readonly budget: MemoryBudget,
  ) {
    this.getters = new WaitLine((w) =>
      refuse(w.call, new SharedTimeoutError(`queue \`${name}\`: no item came within the timeout.`)),
    );
    this.putters = new WaitLine((w) => this.putTimedOut(w));
  }

  handle(op: string, call: Call, a: StoreArgs): void {
    switch (op) {
      case "put":
      case "putMany":
        return this.put(call, a.parts ?? [], a.timeout);
      case "get":
      case "getMany": {
        const count = op === "get" ? 1 : (a.count ?? 1);
        if (!Number.isInteger(count) || count < 1)
          return refuse(call, new SharedValueError(`queue.getMany needs a count of 1 or more, got ${String(count)}.`));
        const getter: Getter = { count, ack: a.ack === true };
        if (this.items.length > 0 && this.getters.length === 0) return this.serve(call, getter);
        if (this.closed) return answer(call, { closed: true });
        this.getters.add(call, getter, a.timeout);
        return;
      }
      case "ack": {
        const t = a.token === undefined ? undefined : this.taken.get(a.token);
        if (!t || t.holder !== call.holder)
          return refuse(
            call,
            new SharedValueError(`queue \`${this.name}\`: no unacknowledged item ${String(a.token)} of yours.`),
          );
        this.taken.delete(a.token as number);
        this.free(t.item);
        return answer(call);
      }
      case "size":
        return answer(call, this.items.length);
      case "close":
        this.close();
        return answer(call);
      default:
        return refuse(call, new SharedValueError(`A queue has no operation \`${op}\`.`));
    }
  }

  private put(call: Call, items: readonly Part[], timeout: number | undefined): void {
    if (this.closed)
      return refuse(call, new QueueClosedError(`queue \`${this.name}\` is closed: nothing more can be put.`));
    // Behind producers already waiting (first come, first served); `pump` answers it, now or later.
    this.putters.add(call, { items, next: 0 }, timeout);
    this.pump();
  }

  /** Moves items from waiting producers into the queue while there is room, and to waiting consumers. */
  private pump(): void {
    for (;;) {
      let moved = false;
      const p = this.putters.peek();
      if (p && p.data.next === p.data.items.length) {
        // All its items are in (room is not needed to say so).
        this.putters.shift();
        answer(p.call, p.data.next);
        moved = true;
      } else if (p && (this.maxsize <= 0 || this.items.length < this.maxsize)) {
        const item = p.data.items[p.data.next] as Part;
        const err = this.budget.take(encodedSize(item), `an item of queue \`${this.name}\``);
        if (err) {
          this.putters.shift();
          refuse(p.call, withCount(err, p.data.next));
        } else {
          this.bytes += encodedSize(item);
          this.items.push({ item, seq: ++this.seq });
          p.data.next++;
        }
        moved = true;
      }
      const g = this.getters.peek();
      if (g && this.items.length > 0) {
        this.getters.shift();
        this.serve(g.call, g.data, false);
        moved = true;
      }
      if (!moved) break;
    }
  }

  /** Answers a consumer with up to its count of items (`pump`: then let waiting producers fill the room made). */
  private serve(call: Call, g: Getter, pump = true): void {
    const out: Part[] = [];
    const tokens: number[] = [];
    while (out.length < g.count && this.items.length > 0) {
      const { item, seq } = this.items.shift() as { item: Part; seq: number };
      out.push(item);
      if (g.ack) {
        const token = this.nextToken++;
        this.taken.set(token, { holder: call.holder, item, seq });
        tokens.push(token);
      } else this.free(item);
    }
    answer(call, g.ack ? { tokens } : {}, out);
    // Room was made: producers waiting for it go on.
    if (pump && this.putters.length > 0) this.pump();
  }

  private putTimedOut(w: Waiter<Putter>): void {
    refuse(
      w.call,
      withCount(
        new SharedTimeoutError(`queue \`${this.name}\` stayed full (maxsize ${this.maxsize}) for the whole timeout.`),
        w.data.next,
      ),
    );
    this.pump();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.putters.failAll(new QueueClosedError(`queue \`${this.name}\` was closed while this put waited for room.`));
    // Consumers wait only on an empty queue: they end now.
    for (const w of this.getters.removeWhere(() => true)) answer(w.call, { closed: true });
  }

  private free(item: Part): void {
    const n = encodedSize(item);
    this.bytes -= n;
    this.budget.give(n);
  }

  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean {
    if (this.getters.withdraw(holder, rid, why)) return true;
    const gone = this.putters.withdraw(holder, rid, why);
    if (gone) this.pump();
    return gone;
  }

  holderGone(holder: Holder): void {
    this.getters.dropHolder(holder);
    if (this.putters.dropHolder(holder).length > 0) this.pump();
    // Items it took but never acknowledged go back to the front, in their original order.
    const back = [...this.taken.entries()].filter(([, t]) => t.holder === holder).sort((a, b) => b[1].seq - a[1].seq);
    for (const [token, t] of back) {
      this.taken.delete(token);
      this.items.unshift({ item: t.item, seq: t.seq });
    }
    if (back.length > 0) this.pump();
  }

  dispose(why: PtclusterError): void {
    this.getters.failAll(why);
    this.putters.failAll(why);
    this.budget.give(this.bytes);
    this.bytes = 0;
    this.taken.clear();
    this.items.removeWhere(() => true);
  }

  idle(): boolean {
    return this.items.length === 0 && this.taken.size === 0 && this.getters.length + this.putters.length === 0;
  }

  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.items.length, bytes: this.bytes, waiting: this.getters.length + this.putters.length };
  }
}

/** Says how many items of a `putMany` went in before it failed. */
function withCount(err: PtclusterError, put: number): PtclusterError {
  if (put > 0) err.message += ` (${put} of its items were put before that)`;
  return err;
}
