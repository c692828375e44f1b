import {
  decodeValue,
  encodedSize,
  encodeValue,
  SharedValueError,
  type Part,
  type PtclusterError,
} from "@ptcluster/protocol";
import { answer, refuse, type Call, type StoreArgs, type SharedObject } from "./call.js";
import type { MemoryBudget } from "./budget.js";
import { applyUpdate, describe } from "./numeric.js";

/**
 * A shared dict: string keys, values kept as the caller encoded them (the controller decodes only
 * what `update` computes with). Every operation is one atomic step.
 */
export class SharedDict implements SharedObject {
  readonly kind = "dict";
  private readonly entries = new Map<string, Part>();
  private bytes = 0;

  constructor(private readonly budget: MemoryBudget) {}

  handle(op: string, call: Call, a: StoreArgs): void {
    const key = a.key;
    if (op === "entries") return answer(call, [...this.entries.keys()], [...this.entries.values()]);
    if (op === "size") return answer(call, this.entries.size);
    if (op === "clear") {
      this.budget.give(this.bytes);
      this.bytes = 0;
      this.entries.clear();
      return answer(call);
    }
    if (typeof key !== "string") return refuse(call, new SharedValueError(`dict.${op} needs a string key.`));
    const current = this.entries.get(key);
    switch (op) {
      case "get":
        return current ? answer(call, true, [current]) : answer(call, false);
      case "has":
        return answer(call, current !== undefined);
      case "delete":
        if (current) this.drop(key, current);
        return answer(call, current !== undefined);
      case "set": {
        const err = this.store(key, a.parts?.[0], current);
        return err ? refuse(call, err) : answer(call);
      }
      case "setIfAbsent": {
        // Answers with the value now stored: the caller's if it won, the earlier one if not.
        if (current) return answer(call, false, [current]);
        const err = this.store(key, a.parts?.[0], undefined);
        return err ? refuse(call, err) : answer(call, true, [this.entries.get(key) as Part]);
      }
      case "compareAndSet": {
        const [expected, next] = a.parts ?? [];
        if (!expected || !next)
          return refuse(call, new SharedValueError("dict.compareAndSet needs an expected and a new value."));
        // `expected: undefined` matches an absent key; otherwise equal encodings (same values, same key order).
        const matches = current ? samePart(current, expected) : isUndefined(expected);
        if (!matches) return answer(call, false);
        const err = this.store(key, next, current);
        return err ? refuse(call, err) : answer(call, true);
      }
      case "update":
        return this.update(call, key, current, a);
      default:
        return refuse(call, new SharedValueError(`A dict has no operation \`${op}\`.`));
    }
  }

  /** Read-modify-write of a number (or bigint); an absent key starts at 0 (`min`/`max`: at the operand). */
  private update(call: Call, key: string, current: Part | undefined, a: StoreArgs): void {
    const operand = a.parts?.[0] ? decodeValue(a.parts[0].body, a.parts[0].frames) : undefined;
    let base: unknown = current ? decodeValue(current.body, current.frames) : undefined;
    if (base === undefined)
      base = a.update === "min" || a.update === "max" ? operand : typeof operand === "bigint" ? 0n : 0;
    if (typeof base !== "number" && typeof base !== "bigint")
      return refuse(
        call,
        new SharedValueError(`dict.update: the value of \`${key}\` is ${describe(base)}, not a number.`),
      );
    let next: number | bigint;
    try {
      next = applyUpdate(base, a.update, operand);
    } catch (err) {
      return refuse(call, err as PtclusterError);
    }
    const encoded = encodeValue(next);
    const err = this.store(key, encoded, current);
    return err ? refuse(call, err) : answer(call, true, [encoded]);
  }

  private store(key: string, value: Part | undefined, current: Part | undefined): PtclusterError | undefined {
    if (!value) return new SharedValueError("dict.set needs a value.");
    const size = entrySize(key, value);
    const old = current ? entrySize(key, current) : 0;
    if (size > old) {
      const err = this.budget.take(size - old, `the value of \`${key}\``);
      if (err) return err;
    } else this.budget.give(old - size);
    this.bytes += size - old;
    this.entries.set(key, value);
    return undefined;
  }

  private drop(key: string, value: Part): void {
    const size = entrySize(key, value);
    this.entries.delete(key);
    this.bytes -= size;
    this.budget.give(size);
  }

  withdraw(): boolean {
    return false;
  }

  holderGone(): void {}

  dispose(): void {
    this.budget.give(this.bytes);
    this.bytes = 0;
    this.entries.clear();
  }

  idle(): boolean {
    return this.entries.size === 0;
  }

  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.entries.size, bytes: this.bytes, waiting: 0 };
  }
}

function entrySize(key: string, v: Part): number {
  return Buffer.byteLength(key) + encodedSize(v);
}

function samePart(a: Part, b: Part): boolean {
  if (!a.body.equals(b.body) || a.frames.length !== b.frames.length) return false;
  return a.frames.every((f, i) => f.equals(b.frames[i] as Buffer));
}

function isUndefined(p: Part): boolean {
  return p.frames.length === 0 && decodeValue(p.body) === undefined;
}
