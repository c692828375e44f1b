import { Packr } from "msgpackr";
import { addScopedExtension } from "./scoped-extension.js";
import { assertCloneable, type CloneCheck, type CloneOptions, type FunctionRecord } from "./clone-check.js";
import { SerializationError } from "../errors.js";

/** Binary values of this many bytes or more travel as their own frames, never copied into the body. */
export const FRAME_THRESHOLD = 1024;

/** A value encoded for the wire: a msgpack body plus the binary frames it refers to by index. */
export interface EncodedValue {
  body: Buffer;
  frames: Buffer[];
}

type BinaryCtor = {
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): ArrayBufferView;
  BYTES_PER_ELEMENT?: number;
};
const BINARY_KINDS: Array<BinaryCtor | typeof ArrayBuffer> = [
  ArrayBuffer,
  Buffer,
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
];
const TypedArray = Object.getPrototypeOf(Uint8Array) as new (...a: never[]) => ArrayBufferView;

// The packer and unpacker are synchronous, so the frame list of the value being (de)coded
// can live here for the duration of one call.
let outFrames: Buffer[] | null = null;
let inFrames: readonly Buffer[] | null = null;
// Likewise the functions of the value being encoded (found by the clone check), and what turns
// a function record back into a function while decoding (only engines have one).
let outFunctions: Map<unknown, FunctionRecord> | null = null;
let inReviver: FunctionReviver | null = null;

/** Turns a function that travelled as source back into a function (an engine compiles it in its namespace). */
export type FunctionReviver = (record: FunctionRecord) => unknown;

// Extension types chosen clear of msgpackr's own (0x42 0x62 0x65 0x69 0x70 0x73 0x74 0x78 0xff).
const EXT_BINARY = 0x50;
const EXT_ERROR = 0x51; // replaces msgpackr's lossy Error encoding: keeps stack, code and own fields
const EXT_NEG_ZERO = 0x53;
const EXT_SPARSE = 0x54;
const EXT_BOXED = 0x55;
const EXT_FUNCTION = 0x56;

function kindOf(value: object): number {
  const k = BINARY_KINDS.indexOf(value.constructor as BinaryCtor);
  if (k >= 0) return k;
  if (value instanceof ArrayBuffer) return 0;
  if (value instanceof DataView) return BINARY_KINDS.length - 1;
  return 2; // unknown TypedArray subclass: its bytes as a Uint8Array
}

function bytesOf(value: ArrayBuffer | ArrayBufferView): Buffer {
  return value instanceof ArrayBuffer
    ? Buffer.from(value)
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function packBinary(value: ArrayBuffer | ArrayBufferView): Buffer {
  const bytes = bytesOf(value);
  const kind = kindOf(value);
  if (bytes.length >= FRAME_THRESHOLD && outFrames) {
    const head = Buffer.allocUnsafe(6);
    head[0] = kind;
    head[1] = 1;
    head.writeUInt32BE(outFrames.length, 2);
    outFrames.push(bytes);
    return head;
  }
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out[0] = kind;
  out[1] = 0;
  bytes.copy(out, 2);
  return out;
}

function unpackBinary(data: Uint8Array): unknown {
  const kind = data[0] ?? 2;
  let bytes: Buffer;
  if (data[1] === 1) {
    const idx = Buffer.from(data.buffer, data.byteOffset, data.byteLength).readUInt32BE(2);
    const frame = inFrames?.[idx];
    if (!frame) throw new RangeError(`binary frame ${idx} is missing`);
    bytes = frame;
  } else {
    bytes = Buffer.from(data.buffer, data.byteOffset + 2, data.byteLength - 2);
  }
  const Ctor = BINARY_KINDS[kind] ?? Uint8Array;
  if (Ctor === Buffer) return bytes;
  if (Ctor === ArrayBuffer) return copyToArrayBuffer(bytes);
  const width = (Ctor as BinaryCtor).BYTES_PER_ELEMENT ?? 1;
  // Views need an aligned offset into a buffer they may keep; copy when that cannot be had for free.
  if (bytes.byteOffset % width !== 0 || data[1] !== 1) {
    const ab = copyToArrayBuffer(bytes);
    return Ctor === DataView ? new DataView(ab) : new (Ctor as BinaryCtor)(ab, 0, bytes.length / width);
  }
  return Ctor === DataView
    ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new (Ctor as BinaryCtor)(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / width);
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(ab).set(bytes);
  return ab;
}

const ERROR_CTORS: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

interface ErrorRecord {
  name: string;
  message: string;
  stack: string | undefined;
  cause: unknown;
  props: Record<string, unknown> | undefined;
}

function errorToRecord(err: Error): ErrorRecord {
  let props: Record<string, unknown> | undefined;
  for (const key of Object.keys(err)) {
    if (key === "cause" || key === "stack" || key === "message") continue;
    (props ??= {})[key] = (err as unknown as Record<string, unknown>)[key];
  }
  return { name: err.name, message: err.message, stack: err.stack, cause: err.cause, props };
}

function recordToError(rec: ErrorRecord): Error {
  const Ctor = ERROR_CTORS[rec.name] ?? Error;
  const err = rec.cause === undefined ? new Ctor(rec.message) : new Ctor(rec.message, { cause: rec.cause });
  if (err.name !== rec.name)
    Object.defineProperty(err, "name", { value: rec.name, configurable: true, writable: true });
  if (rec.stack !== undefined)
    Object.defineProperty(err, "stack", { value: rec.stack, configurable: true, writable: true });
  if (rec.props) Object.assign(err, rec.props);
  return err;
}

/** Stands for `-0` on the wire (msgpack has no negative zero integer). */
class NegativeZero {}
/** Stands for an array with holes: its length and only the entries that exist. */
class SparseArray {
  constructor(
    readonly length: number,
    readonly entries: Array<[number, unknown]>,
  ) {}
}
const NEG_ZERO = new NegativeZero();

/**
 * Copies a value, replacing `-0` and sparse arrays by markers, keeping shared references and
 * cycles. Only called for the rare values that hold either.
 */
function rewriteSpecial(value: unknown, memo: Map<object, unknown>): unknown {
  if (typeof value === "number") return value === 0 && Object.is(value, -0) ? NEG_ZERO : value;
  if (typeof value !== "object" || value === null) return value;
  const hit = memo.get(value);
  if (hit !== undefined) return hit;
  if (Array.isArray(value)) {
    let holes = false;
    for (let i = 0; i < value.length; i++)
      if (!(i in value)) {
        holes = true;
        break;
      }
    if (holes) {
      const entries: Array<[number, unknown]> = [];
      const out = new SparseArray(value.length, entries);
      memo.set(value, out);
      value.forEach((v, i) => entries.push([i, rewriteSpecial(v, memo)]));
      return out;
    }
    const out: unknown[] = new Array(value.length);
    memo.set(value, out);
    for (let i = 0; i < value.length; i++) out[i] = rewriteSpecial(value[i], memo);
    return out;
  }
  if (value instanceof Map) {
    const out = new Map();
    memo.set(value, out);
    for (const [k, v] of value) out.set(rewriteSpecial(k, memo), rewriteSpecial(v, memo));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set();
    memo.set(value, out);
    for (const v of value) out.add(rewriteSpecial(v, memo));
    return out;
  }
  if (Object.prototype.toString.call(value) === "[object Object]") {
    const out: Record<string, unknown> = {};
    memo.set(value, out);
    for (const k of Object.keys(value)) out[k] = rewriteSpecial((value as Record<string, unknown>)[k], memo);
    return out;
  }
  return value; // dates, regexps, errors, binary: kept as they are
}

// Scoped: present only inside encodeValue and decodeValue (see scoped-extension.ts), so a user's
// own msgpackr in the same process packs ArrayBuffers, errors and boxed primitives as before.
// Registered before msgpackr's built-ins, so they win while active.
const scope = { encoding: () => outFrames !== null, decoding: () => inFrames !== null };
// `instanceof`, as msgpackr matched classes: values of another realm (a vm context) are not ours to take.
const isBinary = (v: object) => v instanceof TypedArray || v instanceof ArrayBuffer || v instanceof DataView;
addScopedExtension(scope, { type: EXT_BINARY, matches: isBinary, pack: packBinary, unpack: unpackBinary });
addScopedExtension(scope, {
  type: EXT_ERROR,
  matches: (v) => v instanceof Error,
  write: errorToRecord,
  read: recordToError,
});
addScopedExtension(scope, {
  type: EXT_NEG_ZERO,
  matches: (v) => v instanceof NegativeZero,
  write: () => 0,
  read: () => -0,
});
addScopedExtension(scope, {
  type: EXT_SPARSE,
  matches: (v) => v instanceof SparseArray,
  write: (a: SparseArray): [number, Array<[number, unknown]>] => [a.length, a.entries],
  read: ([length, entries]) => {
    const out = new Array(length);
    for (const [i, v] of entries) out[i] = v;
    return out;
  },
});

// Primitive wrapper objects (`new Number(1)`, `Object(1n)`) survive structured clone as wrappers.
const isBoxed = (v: object) =>
  v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt;
addScopedExtension(scope, {
  type: EXT_BOXED,
  matches: isBoxed,
  write: (v: { valueOf(): unknown }) => v.valueOf(),
  read: (v: unknown) => Object(v),
});

// Functions travel as their record (source, hash, name, path), only when the clone check shipped them.
addScopedExtension(scope, {
  type: EXT_FUNCTION,
  matches: (v) => v instanceof Function,
  write: (fn: unknown): [string, string, string, string] => {
    const rec = outFunctions?.get(fn);
    if (!rec)
      throw new SerializationError(
        "value",
        `a function (${(fn as { name?: string }).name || "anonymous"}) cannot be sent here.`,
      );
    return [rec.hash, rec.src, rec.name, rec.path];
  },
  read: ([hash, src, name, path]) => {
    if (!inReviver)
      throw new TypeError(`a function (\`${name}\`, sent as \`${path}\`) arrived where none can be received`);
    return inReviver({ hash, src, name, path });
  },
});

const valuePackr = new Packr({ structuredClone: true, useBigIntExtension: true, moreTypes: true });

/**
 * Encodes a value with structured-clone semantics. Binary values of 1 KiB or more are returned
 * as separate frames. Throws a {@link SerializationError} naming `root` and the path of a value
 * that cannot be sent.
 */
export function encodeValue(
  value: unknown,
  root = "value",
  checked?: CloneCheck,
  options?: CloneOptions,
): EncodedValue {
  const check = checked ?? assertCloneable(value, root, options);
  const frames: Buffer[] = [];
  outFrames = frames;
  outFunctions = check.functions ?? null;
  try {
    return { body: valuePackr.pack(check.special ? rewriteSpecial(value, new Map()) : value), frames };
  } catch (err) {
    if (err instanceof SerializationError) throw err;
    throw new SerializationError(root, (err as Error).message, { cause: err });
  } finally {
    outFrames = null;
    outFunctions = null;
  }
}

/** Total bytes of an encoded value (body and frames). */
export function encodedSize(v: { body: Uint8Array; frames: readonly Uint8Array[] }): number {
  let n = v.body.byteLength;
  for (const f of v.frames) n += f.byteLength;
  return n;
}

/** Default limit on one message: 1 GiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 30;

/**
 * Decodes a value produced by {@link encodeValue}; typed arrays of 1 KiB or more view their frames
 * without copying. Functions in it are rebuilt by `revive`; without one, a function is refused.
 */
export function decodeValue(body: Uint8Array, frames: readonly Buffer[] = [], revive?: FunctionReviver): unknown {
  inFrames = frames;
  inReviver = revive ?? null;
  try {
    return valuePackr.unpack(body);
  } finally {
    inFrames = null;
    inReviver = null;
  }
}
