import { LockNotHeldError, SharedTimeoutError, SharedValueError, type PtclusterError } from "@ptcluster/protocol";
import { answer, refuse, type Call, type Holder, type StoreArgs, type SharedObject } from "./call.js";
import { WaitLine } from "./wait-line.js";

/**
 * A lock (one permit) or a semaphore (`permits`). Each acquisition gets a token that its
 * `release` names, so a release can never free someone else's hold; waiting acquirers are served
 * first come, first served; a holder that dies has its holds released (Python's Manager keeps
 * such a lock held for ever, Dask's leases expire by the clock and can be double-booked).
 */
export class SharedPermits implements SharedObject {
  private readonly holds = new Map<number, Holder>();
  private readonly waiting: WaitLine<null>;
  private nextToken = 1;

  constructor(
    readonly kind: "lock" | "semaphore",
    private readonly name: string,
    readonly permits: number,
  ) {
    this.waiting = new WaitLine((w) =>
      refuse(w.call, new SharedTimeoutError(`${kind} \`${name}\` was not free within the timeout.`)),
    );
  }

  handle(op: string, call: Call, a: StoreArgs): void {
    switch (op) {
      case "acquire":
        if (this.holds.size < this.permits && this.waiting.length === 0) return this.grant(call);
        this.waiting.add(call, null, a.timeout);
        return;
      case "release": {
        const token = a.token;
        if (token === undefined || !this.holds.has(token))
          return refuse(
            call,
            new LockNotHeldError(
              `${this.kind} \`${this.name}\`: this hold (${String(token)}) is not held; it was released already, or freed when its holder went away.`,
            ),
          );
        this.holds.delete(token);
        answer(call);
        return this.serveWaiting();
      }
      case "locked":
        return answer(call, this.holds.size >= this.permits);
      case "available":
        return answer(call, this.permits - this.holds.size);
      default:
        return refuse(call, new SharedValueError(`A ${this.kind} has no operation \`${op}\`.`));
    }
  }

  private grant(call: Call): void {
    const token = this.nextToken++;
    this.holds.set(token, call.holder);
    answer(call, token);
  }

  private serveWaiting(): void {
    while (this.holds.size < this.permits && this.waiting.length > 0) {
      const w = this.waiting.shift();
      if (w) this.grant(w.call);
    }
  }

  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean {
    return this.waiting.withdraw(holder, rid, why);
  }

  holderGone(holder: Holder): void {
    this.waiting.dropHolder(holder);
    for (const [token, h] of this.holds) if (h === holder) this.holds.delete(token);
    this.serveWaiting();
  }

  dispose(why: PtclusterError): void {
    this.waiting.failAll(why);
    this.holds.clear();
  }

  idle(): boolean {
    return this.holds.size === 0 && this.waiting.length === 0;
  }

  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.holds.size, bytes: 0, waiting: this.waiting.length };
  }
}
