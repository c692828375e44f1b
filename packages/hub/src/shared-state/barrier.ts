import { BarrierBrokenError, SharedValueError, type PtclusterError } from "@ptcluster/protocol";
import { answer, refuse, type Call, type Holder, type StoreArgs, type SharedObject } from "./call.js";
import { WaitLine } from "./wait-line.js";

/**
 * A shared barrier for `parties` callers (Python's `Barrier`): each `wait` returns, with its
 * arrival index (0 … parties-1), once all have arrived. If one of a round's parties times out,
 * is cancelled or dies, the round is broken: the others fail with `BarrierBrokenError` at once
 * (rather than waiting for a party that will never come), and the next round starts afresh.
 */
export class SharedBarrier implements SharedObject {
  readonly kind = "barrier";
  private readonly waiting: WaitLine<null>;
  private round = 0;

  constructor(
    private readonly name: string,
    readonly parties: number,
  ) {
    this.waiting = new WaitLine((w) => this.breakRound("a party's wait timed out", w.call));
  }

  handle(op: string, call: Call, a: StoreArgs): void {
    switch (op) {
      case "wait": {
        this.waiting.add(call, null, a.timeout);
        if (this.waiting.length < this.parties) return;
        const round = this.round++;
        let index = 0;
        for (const w of this.waiting.removeWhere(() => true)) answer(w.call, { index: index++, round });
        return;
      }
      case "waiting":
        return answer(call, this.waiting.length);
      default:
        return refuse(call, new SharedValueError(`A barrier has no operation \`${op}\`.`));
    }
  }

  /** Fails every party of this round (the one that timed out is answered likewise). */
  private breakRound(why: string, timedOut?: Call): void {
    const err = new BarrierBrokenError(
      `barrier \`${this.name}\` (${this.parties} parties) was broken: ${why} before all arrived.`,
    );
    if (timedOut) refuse(timedOut, err);
    this.waiting.failAll(err);
    this.round++;
  }

  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean {
    const gone = this.waiting.withdraw(holder, rid, why);
    if (gone) this.breakRound("a party's wait was cancelled");
    return gone;
  }

  holderGone(holder: Holder): void {
    if (this.waiting.dropHolder(holder).length > 0) this.breakRound("a party went away");
  }

  dispose(why: PtclusterError): void {
    this.waiting.failAll(why);
  }

  idle(): boolean {
    return this.waiting.length === 0;
  }

  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.parties, bytes: 0, waiting: this.waiting.length };
  }
}
