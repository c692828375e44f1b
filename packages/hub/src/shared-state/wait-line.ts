import { Deque, type PtclusterError } from "@ptcluster/protocol";
import { refuse, type Call, type Holder } from "./call.js";

/** A call waiting on an object, with what it waits for. */
export interface Waiter<T> {
  readonly call: Call;
  readonly data: T;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Calls waiting on an object, first come first served, each until its deadline. A timed-out call
 * leaves the line and is answered by `onTimeout`; the others leave when served, withdrawn, or
 * when their holder is gone.
 */
export class WaitLine<T> {
  private readonly line = new Deque<Waiter<T>>();

  constructor(private readonly onTimeout: (w: Waiter<T>) => void) {}

  get length(): number {
    return this.line.length;
  }

  add(call: Call, data: T, timeoutMs: number | undefined): Waiter<T> {
    const w: Waiter<T> = { call, data, timer: undefined };
    if (timeoutMs !== undefined) {
      w.timer = setTimeout(() => {
        if (this.remove(w)) this.onTimeout(w);
      }, timeoutMs);
      // A waiting call never keeps the controller alive on its own.
      w.timer.unref();
    }
    this.line.push(w);
    return w;
  }

  peek(): Waiter<T> | undefined {
    return this.line.peek();
  }

  /** The first waiter, out of the line (its deadline cleared). */
  shift(): Waiter<T> | undefined {
    const w = this.line.shift();
    if (w) clearTimeout(w.timer);
    return w;
  }

  remove(w: Waiter<T>): boolean {
    return this.removeWhere((x) => x === w).length > 0;
  }

  removeWhere(pred: (w: Waiter<T>) => boolean): Array<Waiter<T>> {
    const out = this.line.removeWhere(pred);
    for (const w of out) clearTimeout(w.timer);
    return out;
  }

  /** Withdraws the call `rid` of `holder`, answering it with `why`; true if it was here. */
  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean {
    const out = this.removeWhere((w) => w.call.holder === holder && w.call.rid === rid);
    for (const w of out) refuse(w.call, why);
    return out.length > 0;
  }

  /** Drops the calls of a holder that is gone (no answer: no one would read it). */
  dropHolder(holder: Holder): Array<Waiter<T>> {
    return this.removeWhere((w) => w.call.holder === holder);
  }

  /** Every waiter out of the line, each answered with `why`. */
  failAll(why: PtclusterError): void {
    for (const w of this.removeWhere(() => true)) refuse(w.call, why);
  }

  [Symbol.iterator](): IterableIterator<Waiter<T>> {
    return this.line[Symbol.iterator]();
  }
}
