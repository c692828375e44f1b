import { CommUsageError } from "@ptcluster/protocol";

/**
 * The reduction operators of `reduce` and `allreduce`: how two contributions combine. Built-in
 * operators work on numbers, bigints and typed arrays (element-wise, on the arrays themselves:
 * never copied element by element into JS arrays); a function operator combines any values.
 */

export type ReduceOpName = "sum" | "prod" | "min" | "max";
/** A built-in operator, or a function assumed associative, applied in rank order: `op(lower, higher)`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ReduceOp = ReduceOpName | ((a: any, b: any) => unknown);

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const OP_NAMES: readonly string[] = ["sum", "prod", "min", "max"];

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** Throws `CommUsageError` unless `op` is a built-in name or a function. */
export function validateOp(op: unknown, call: string): asserts op is ReduceOp {
  if (typeof op === "function" || (typeof op === "string" && OP_NAMES.includes(op))) return;
  throw new CommUsageError(
    `${call}: expected the operator to be "sum", "prod", "min", "max" or a function (a, b) => c, got ${describe(op)}.`,
  );
}

/** What a contribution looks like, for checking that every rank gives the same kind: `Float64Array[1024]`, `number`. */
export function shapeOf(value: unknown): string {
  if (isTypedArray(value)) return `${value.constructor.name}[${value.length}]`;
  return typeof value;
}

/**
 * `a op b` as a new value (`a` holds the lower ranks' part). Typed arrays give a new array of
 * the same kind; `a` and `b` are left as they were.
 */
export function combine(op: ReduceOp, a: unknown, b: unknown, call: string): unknown {
  if (typeof op === "function") return op(a, b);
  if (isTypedArray(a)) {
    checkSameArrays(a, b, call);
    const out = a.slice();
    combineInto(op, out, b as TypedArray);
    return out;
  }
  if (typeof a === "number" && typeof b === "number") return scalar(op, a, b);
  if (typeof a === "bigint" && typeof b === "bigint") return scalarBig(op, a, b);
  throw new CommUsageError(
    `${call}: "${op}" combines numbers, bigints or typed arrays of one kind and length on every rank; got ${describe(a)} and ${describe(b)}. ` +
      `Pass the same kind of value on every rank, or a function operator (a, b) => c for other values.`,
  );
}

/**
 * `dst[i] = a[i] op src[i]`, `a` being `dst` unless given (in place); built-in operators are
 * commutative, so the order of the operands does not change the bits.
 */
export function combineInto(op: ReduceOpName, dst: TypedArray, src: TypedArray, a: TypedArray = dst): void {
  const n = dst.length;
  if (dst instanceof BigInt64Array || dst instanceof BigUint64Array) {
    const s = src as BigInt64Array | BigUint64Array;
    const x = a as BigInt64Array | BigUint64Array;
    switch (op) {
      case "sum":
        for (let i = 0; i < n; i++) dst[i] = (x[i] as bigint) + (s[i] as bigint);
        return;
      case "prod":
        for (let i = 0; i < n; i++) dst[i] = (x[i] as bigint) * (s[i] as bigint);
        return;
      case "min":
        for (let i = 0; i < n; i++) dst[i] = (s[i] as bigint) < (x[i] as bigint) ? (s[i] as bigint) : (x[i] as bigint);
        return;
      case "max":
        for (let i = 0; i < n; i++) dst[i] = (s[i] as bigint) > (x[i] as bigint) ? (s[i] as bigint) : (x[i] as bigint);
        return;
    }
  }
  const d = dst as Float64Array;
  const s = src as Float64Array;
  const x = a as Float64Array;
  switch (op) {
    case "sum":
      for (let i = 0; i < n; i++) d[i] = (x[i] as number) + (s[i] as number);
      return;
    case "prod":
      for (let i = 0; i < n; i++) d[i] = (x[i] as number) * (s[i] as number);
      return;
    // Math.min/max, not `<`: they are commutative for NaN and for -0 against 0.
    case "min":
      for (let i = 0; i < n; i++) d[i] = Math.min(x[i] as number, s[i] as number);
      return;
    case "max":
      for (let i = 0; i < n; i++) d[i] = Math.max(x[i] as number, s[i] as number);
      return;
  }
}

/** Throws `CommUsageError` unless `b` is a typed array of `a`'s kind and length. */
export function checkSameArrays(a: TypedArray, b: unknown, call: string): void {
  if (isTypedArray(b) && b.constructor === a.constructor && b.length === a.length) return;
  throw new CommUsageError(
    `${call}: typed arrays reduce element-wise and must be of one kind and length on every rank; got ${shapeOf(a)} and ${describe(b)}.`,
  );
}

function scalar(op: ReduceOpName, a: number, b: number): number {
  switch (op) {
    case "sum":
      return a + b;
    case "prod":
      return a * b;
    case "min":
      return Math.min(a, b);
    case "max":
      return Math.max(a, b);
  }
}

function scalarBig(op: ReduceOpName, a: bigint, b: bigint): bigint {
  switch (op) {
    case "sum":
      return a + b;
    case "prod":
      return a * b;
    case "min":
      return b < a ? b : a;
    case "max":
      return b > a ? b : a;
  }
}

/** A value in an error message: its type, and the value itself when short. */
export function describe(value: unknown): string {
  if (isTypedArray(value)) return shapeOf(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "undefined")
    return `${String(value)} (${typeof value})`;
  if (typeof value === "bigint") return `${value}n (bigint)`;
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a ${(value as object).constructor?.name ?? "object"}`;
}
