import { types } from "node:util";
import { SerializationError } from "../errors.js";

/**
 * Checks that `value` survives the structured-clone algorithm, naming the path of the first
 * value that does not (`args[1].handler`), before any byte is sent.
 * Functions, symbols, promises, weak collections and shared memory cannot cross a process.
 */
export function assertCloneable(value: unknown, root: string): CloneCheck {
  const t = typeof value;
  if (t !== "object" && t !== "function" && t !== "symbol") return { special: Object.is(value, -0) }; // fast path for primitives
  const state: CloneCheck = { special: false };
  walk(value, root, new Set(), state);
  return state;
}

/** What the check found besides errors. */
export interface CloneCheck {
  /** The value holds `-0` or sparse arrays, which msgpack alone would not keep. */
  special: boolean;
}

function walk(value: unknown, path: string, seen: Set<object>, state: CloneCheck): void {
  switch (typeof value) {
    case "number":
      if (value === 0 && Object.is(value, -0)) state.special = true;
      return;
    case "function":
      throw new SerializationError(path, `a function (${describeFn(value as (...a: unknown[]) => unknown)}) cannot be sent. Ship code as the task function, or pass data instead.`);
    case "symbol":
      throw new SerializationError(path, `a symbol (${String(value)}) cannot be sent.`);
    case "object":
      break;
    default:
      return;
  }
  if (value === null) return;
  const obj = value as object;
  if (seen.has(obj)) return;
  seen.add(obj);
  if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer || obj instanceof Date || obj instanceof RegExp) return;
  if (obj instanceof Number || obj instanceof String || obj instanceof Boolean || obj instanceof BigInt) return;
  if (typeof SharedArrayBuffer !== "undefined" && obj instanceof SharedArrayBuffer) {
    throw new SerializationError(path, "a SharedArrayBuffer cannot be shared across processes; copy it into an ArrayBuffer.");
  }
  if (types.isPromise(obj)) throw new SerializationError(path, "a Promise cannot be sent; await it first.");
  if (types.isWeakMap(obj) || types.isWeakSet(obj) || obj instanceof WeakRef) {
    throw new SerializationError(path, `a ${obj.constructor.name} cannot be sent.`);
  }
  if (types.isProxy(obj)) throw new SerializationError(path, "a Proxy cannot be sent.");
  if (obj instanceof Map) {
    let i = 0;
    for (const [k, v] of obj) {
      walk(k, `${path}.<key ${i}>`, seen, state);
      walk(v, `${path}.get(${keyLabel(k)})`, seen, state);
      i++;
    }
    return;
  }
  if (obj instanceof Set) {
    let i = 0;
    for (const v of obj) walk(v, `${path}.<item ${i++}>`, seen, state);
    return;
  }
  if (obj instanceof Error) {
    walk(readProp(obj, "cause", path), `${path}.cause`, seen, state);
    return;
  }
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) state.special = true;
      walk(readProp(obj, i, path), `${path}[${i}]`, seen, state);
    }
    return;
  }
  const tag = Object.prototype.toString.call(obj);
  if (tag !== "[object Object]" && tag !== "[object Arguments]") {
    const name = obj.constructor?.name ?? tag.slice(8, -1);
    if (isHostObject(tag)) throw new SerializationError(path, `a ${name} cannot be sent.`);
  }
  for (const key of Object.keys(obj)) {
    walk(readProp(obj, key, path), `${path}${propLabel(key)}`, seen, state);
  }
}

const HOST_TAGS = new Set(["[object MessagePort]", "[object Blob]", "[object File]", "[object ReadableStream]", "[object WritableStream]", "[object Socket]", "[object Generator]", "[object AsyncGenerator]"]);
function isHostObject(tag: string): boolean {
  return HOST_TAGS.has(tag);
}

function readProp(obj: object, key: string | number, path: string): unknown {
  try {
    return (obj as Record<string | number, unknown>)[key];
  } catch (err) {
    throw new SerializationError(`${path}${typeof key === "number" ? `[${key}]` : propLabel(key)}`, `reading it threw ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

function propLabel(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
function keyLabel(k: unknown): string {
  return typeof k === "string" ? JSON.stringify(k) : typeof k === "object" ? "<object>" : String(k);
}
function describeFn(f: (...a: unknown[]) => unknown): string {
  return f.name ? `\`${f.name}\`` : "anonymous";
}
