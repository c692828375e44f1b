import { decodeValue, encodeValue, SharedValueError, type PtclusterError } from "@ptcluster/protocol";
import { answer, refuse, type Call, type StoreArgs, type SharedObject } from "./call.js";
import { applyUpdate } from "./numeric.js";

/** A shared number (Python's `Value`, with the atomic increment the Manager's lacks). */
export class SharedCounter implements SharedObject {
  readonly kind = "counter";
  private value: number | bigint = 0;

  handle(op: string, call: Call, a: StoreArgs): void {
    const operand = a.parts?.[0] ? decodeValue(a.parts[0].body, a.parts[0].frames) : undefined;
    switch (op) {
      case "get":
        break;
      case "add":
      case "update":
        try {
          // A counter that was never set takes the kind of its first operand (0 or 0n).
          if (this.value === 0 && typeof operand === "bigint") this.value = 0n;
          this.value = applyUpdate(this.value, op === "add" ? "add" : a.update, operand ?? 1);
        } catch (err) {
          return refuse(call, err as PtclusterError);
        }
        break;
      case "set":
        if (typeof operand !== "number" && typeof operand !== "bigint")
          return refuse(call, new SharedValueError("counter.set needs a number or a bigint."));
        this.value = operand;
        break;
      default:
        return refuse(call, new SharedValueError(`A counter has no operation \`${op}\`.`));
    }
    answer(call, true, [encodeValue(this.value)]);
  }

  withdraw(): boolean {
    return false;
  }
  holderGone(): void {}
  dispose(): void {}
  idle(): boolean {
    return this.value === 0 || this.value === 0n;
  }
  describe(): { size: number; bytes: number; waiting: number } {
    return { size: 1, bytes: 8, waiting: 0 };
  }
}
