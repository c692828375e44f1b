import { SharedTimeoutError, SharedValueError, type PtclusterError } from "@ptcluster/protocol";
import { answer, refuse, type Call, type Holder, type StoreArgs, type SharedObject } from "./call.js";
import { WaitLine } from "./wait-line.js";

/** A shared event (Python's `Event`): `wait` returns once it is set; `set` wakes every waiter. */
export class SharedEvent implements SharedObject {
  readonly kind = "event";
  private isSet = false;
  private readonly waiting: WaitLine<null>;

  constructor(name: string) {
    this.waiting = new WaitLine((w) =>
      refuse(w.call, new SharedTimeoutError(`event \`${name}\` was not set within the timeout.`)),
    );
  }

  handle(op: string, call: Call, a: StoreArgs): void {
    switch (op) {
      case "wait":
        if (this.isSet) return answer(call, true);
        this.waiting.add(call, null, a.timeout);
        return;
      case "set":
        this.isSet = true;
        for (const w of this.waiting.removeWhere(() => true)) answer(w.call, true);
        return answer(call);
      case "clear":
        this.isSet = false;
        return answer(call);
      case "isSet":
        return answer(call, this.isSet);
      default:
        return refuse(call, new SharedValueError(`An event has no operation \`${op}\`.`));
    }
  }

  withdraw(holder: Holder, rid: number, why: PtclusterError): boolean {
    return this.waiting.withdraw(holder, rid, why);
  }
  holderGone(holder: Holder): void {
    this.waiting.dropHolder(holder);
  }
  dispose(why: PtclusterError): void {
    this.waiting.failAll(why);
  }
  idle(): boolean {
    return !this.isSet && this.waiting.length === 0;
  }
  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.isSet ? 1 : 0, bytes: 0, waiting: this.waiting.length };
  }
}
