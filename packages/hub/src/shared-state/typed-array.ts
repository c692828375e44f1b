import { decodeValue, encodeValue, SharedValueError, type Part, type PtclusterError } from "@ptcluster/protocol";
import { answer, refuse, type Call, type StoreArgs, type SharedObject } from "./call.js";
import type { MemoryBudget } from "./budget.js";
import { applyUpdate } from "./numeric.js";

type Numeric = NodeJS.TypedArray;
type NumericCtor = { new (length: number): Numeric; readonly name: string; readonly BYTES_PER_ELEMENT: number };

/** The typed-array kinds a shared array may have, by name. */
export const ARRAY_KINDS: Record<string, NumericCtor> = Object.fromEntries(
  [
    Float64Array,
    Float32Array,
    Int32Array,
    Uint32Array,
    Int16Array,
    Uint16Array,
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    BigInt64Array,
    BigUint64Array,
  ].map((c) => [c.name, c as unknown as NumericCtor]),
);

/**
 * A shared array of one typed-array kind (Python's `Array('d', …)`), held by the controller:
 * element reads, writes and read-modify-writes are atomic; `read` and `write` move slices whole.
 */
export class SharedArray implements SharedObject {
  readonly kind = "array";

  private constructor(
    private readonly name: string,
    private readonly data: Numeric,
    private readonly budget: MemoryBudget,
  ) {}

  /** A new array from its initial values (an encoded typed array), or of a kind and length, zeroed. */
  static create(
    name: string,
    init: Part | undefined,
    kind: string | undefined,
    length: number | undefined,
    budget: MemoryBudget,
  ): SharedArray | PtclusterError {
    if (init) {
      const v = decodeValue(init.body, init.frames);
      const Ctor = ArrayBuffer.isView(v) ? ARRAY_KINDS[v.constructor.name] : undefined;
      if (!Ctor)
        return new SharedValueError(
          `array \`${name}\`: the initial values must be a typed array (${Object.keys(ARRAY_KINDS).join(", ")}).`,
        );
      const data = new Ctor((v as Numeric).length);
      data.set(v as never);
      const err = budget.take(data.byteLength, `array \`${name}\``);
      return err ?? new SharedArray(name, data, budget);
    }
    if (kind === undefined)
      return new SharedValueError(
        `array \`${name}\` does not exist yet: make it with its initial values (\`shared.array(name, Float64Array.from(values))\`) or a kind and length (\`shared.array(name, Float64Array, n)\`).`,
      );
    const Ctor = ARRAY_KINDS[kind];
    if (!Ctor)
      return new SharedValueError(
        `array \`${name}\`: unknown kind \`${String(kind)}\` (${Object.keys(ARRAY_KINDS).join(", ")}).`,
      );
    if (length === undefined || !Number.isInteger(length) || length < 0)
      return new SharedValueError(`array \`${name}\`: the length must be a whole number, got ${String(length)}.`);
    // Counted before it is allocated: a length past the limit allocates nothing.
    const err = budget.take(length * Ctor.BYTES_PER_ELEMENT, `array \`${name}\``);
    return err ?? new SharedArray(name, new Ctor(length), budget);
  }

  /** Its kind and length, to check a reopening against. */
  get shape(): { kind: string; length: number } {
    return { kind: this.data.constructor.name, length: this.data.length };
  }

  handle(op: string, call: Call, a: StoreArgs): void {
    const operand = a.parts?.[0] ? decodeValue(a.parts[0].body, a.parts[0].frames) : undefined;
    switch (op) {
      case "read": {
        const start = a.offset ?? 0;
        const end = a.count === undefined ? this.data.length : start + a.count;
        if (!this.inRange(start, Math.max(start, end - 1), call)) return;
        return answer(call, true, [encodeValue(this.data.slice(start, end))]);
      }
      case "write": {
        const at = a.offset ?? 0;
        const values = operand as ArrayLike<number | bigint> | undefined;
        if (!values || typeof values !== "object" || typeof values.length !== "number")
          return refuse(
            call,
            new SharedValueError(`array \`${this.name}\`: write needs an array or typed array of values.`),
          );
        if (values.length === 0) return answer(call);
        if (!this.inRange(at, at + values.length - 1, call)) return;
        try {
          this.data.set(values as never, at);
        } catch (err) {
          return refuse(call, new SharedValueError(`array \`${this.name}\`: ${(err as Error).message}`));
        }
        return answer(call);
      }
      case "length":
        return answer(call, this.data.length);
    }
    const i = a.index;
    if (i === undefined || !this.inRange(i, i, call)) return;
    const isBig = this.data instanceof BigInt64Array || this.data instanceof BigUint64Array;
    switch (op) {
      case "get":
        return answer(call, true, [encodeValue(this.data[i])]);
      case "set":
        if (typeof operand !== (isBig ? "bigint" : "number"))
          return refuse(call, new SharedValueError(`array \`${this.name}\` holds ${isBig ? "bigints" : "numbers"}.`));
        this.data[i] = operand as never;
        return answer(call);
      case "update":
        try {
          this.data[i] = applyUpdate(this.data[i] as number | bigint, a.update, operand) as never;
        } catch (err) {
          return refuse(call, err as PtclusterError);
        }
        // The value as stored (an Int32Array wraps, a Uint8ClampedArray clamps).
        return answer(call, true, [encodeValue(this.data[i])]);
      default:
        return refuse(call, new SharedValueError(`An array has no operation \`${op}\`.`));
    }
  }

  private inRange(first: number, last: number, call: Call): boolean {
    if (Number.isInteger(first) && Number.isInteger(last) && first >= 0 && last < this.data.length) return true;
    refuse(
      call,
      new SharedValueError(
        `array \`${this.name}\` has ${this.data.length} elements; index ${first === last ? first : `${first}..${last}`} is out of range.`,
      ),
    );
    return false;
  }

  withdraw(): boolean {
    return false;
  }
  holderGone(): void {}
  dispose(): void {
    this.budget.give(this.data.byteLength);
  }
  /** Never: its elements are data someone stored (it goes when deleted). */
  idle(): boolean {
    return false;
  }
  describe(): { size: number; bytes: number; waiting: number } {
    return { size: this.data.length, bytes: this.data.byteLength, waiting: 0 };
  }
}
