import { types } from "node:util";
import { SerializationError } from "../errors.js";

/** A function as it travels inside a value: its source, the hash engines compile it by, its name and where it was sent. */
export interface FunctionRecord {
  hash: string;
  src: string;
  name: string;
  path: string;
}

/** How a value is checked: which way it goes, and whether functions in it travel as source. */
export interface CloneOptions {
  /**
   * Prepares a function found at `path` to travel as source, or throws a `SerializationError`
   * saying why it cannot (a native or bound function). Without it, a function is refused.
   */
  shipFunction?: (fn: (...a: unknown[]) => unknown, path: string) => FunctionRecord;
  /** The value is a task's result going back to the client (words the advice of errors). */
  returned?: boolean;
}

/**
 * Checks that `value` survives the structured-clone algorithm, naming the path of the first
 * value that does not (`args[1].handler`), before any byte is sent.
 * Symbols, promises, weak collections and shared memory cannot cross a process; functions only
 * with `options.shipFunction`. Instances of classes are refused too: structured clone would
 * drop their prototype silently, and a user calling a method on the copy would learn it late.
 */
export function assertCloneable(value: unknown, root: string, options?: CloneOptions): CloneCheck {
  const t = typeof value;
  if (t !== "object" && t !== "function" && t !== "symbol") return { special: Object.is(value, -0) }; // fast path for primitives
  const state: CloneCheck = { special: false };
  walk(value, root, new Set(), state, options);
  return state;
}

/** What the check found besides errors. */
export interface CloneCheck {
  /** The value holds `-0` or sparse arrays, which msgpack alone would not keep. */
  special: boolean;
  /** The functions the value holds, to travel as source (only with `shipFunction`). */
  functions?: Map<unknown, FunctionRecord>;
}

/** The checks of two values sent together (`[args, scope]`). */
export function mergeChecks(a: CloneCheck, b: CloneCheck): CloneCheck {
  const out: CloneCheck = { special: a.special || b.special };
  if (a.functions || b.functions) out.functions = new Map([...(a.functions ?? []), ...(b.functions ?? [])]);
  return out;
}

function walk(
  value: unknown,
  path: string,
  seen: Set<object>,
  state: CloneCheck,
  options: CloneOptions | undefined,
): void {
  switch (typeof value) {
    case "number":
      if (value === 0 && Object.is(value, -0)) state.special = true;
      return;
    case "function": {
      const fn = value as (...a: unknown[]) => unknown;
      if (options?.shipFunction) {
        if (!state.functions?.has(fn)) (state.functions ??= new Map()).set(fn, options.shipFunction(fn, path));
        return;
      }
      throw new SerializationError(
        path,
        options?.returned
          ? `a function (${describeFn(fn)}) cannot be returned: functions travel to engines as source, not back. Return data, such as what the function computes.`
          : `a function (${describeFn(fn)}) cannot be sent here. Pass data instead.`,
      );
    }
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
    throw new SerializationError(
      path,
      "a SharedArrayBuffer cannot be shared across processes; copy it into an ArrayBuffer.",
    );
  }
  if (types.isPromise(obj)) throw new SerializationError(path, "a Promise cannot be sent; await it first.");
  if (types.isWeakMap(obj) || types.isWeakSet(obj) || obj instanceof WeakRef) {
    throw new SerializationError(path, `a ${obj.constructor.name} cannot be sent.`);
  }
  if (types.isProxy(obj)) throw new SerializationError(path, "a Proxy cannot be sent.");
  if (obj instanceof Map) {
    let i = 0;
    for (const [k, v] of obj) {
      walk(k, `${path}.<key ${i}>`, seen, state, options);
      walk(v, `${path}.get(${keyLabel(k)})`, seen, state, options);
      i++;
    }
    return;
  }
  if (obj instanceof Set) {
    let i = 0;
    for (const v of obj) walk(v, `${path}.<item ${i++}>`, seen, state, options);
    return;
  }
  if (obj instanceof Error) {
    walk(readProp(obj, "cause", path), `${path}.cause`, seen, state, options);
    return;
  }
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      if (!(i in obj)) state.special = true;
      walk(readProp(obj, i, path), `${path}[${i}]`, seen, state, options);
    }
    return;
  }
  const tag = Object.prototype.toString.call(obj);
  if (tag !== "[object Object]" && tag !== "[object Arguments]") {
    const name = obj.constructor?.name ?? tag.slice(8, -1);
    if (isHostObject(tag)) throw new SerializationError(path, `a ${name} cannot be sent.`);
  }
  const proto = Object.getPrototypeOf(obj) as object | null;
  if (proto !== Object.prototype && proto !== null && losesPrototype(proto)) throw classInstance(proto, path, options);
  for (const key of Object.keys(obj)) {
    walk(readProp(obj, key, path), `${path}${propLabel(key)}`, seen, state, options);
  }
}

/** `Object.prototype` of another realm (a `vm` context, a worker's copy): still a plain object. */
function isPlainPrototype(proto: object): boolean {
  return (
    Object.getPrototypeOf(proto) === null &&
    Object.prototype.toString.call(proto) === "[object Object]" &&
    (proto as { constructor?: { name?: unknown } }).constructor?.name === "Object"
  );
}

/**
 * Whether copying an object with this prototype loses something: methods or fields inherited, or
 * a named class (`instanceof`). Prototypes with nothing of their own but an anonymous constructor
 * (`process.env`'s) lose nothing.
 */
function losesPrototype(proto: object): boolean {
  for (
    let p: object | null = proto;
    p !== null && p !== Object.prototype && !isPlainPrototype(p);
    p = Object.getPrototypeOf(p) as object | null
  ) {
    const keys = Reflect.ownKeys(p);
    if (keys.length > 1 || (keys.length === 1 && keys[0] !== "constructor")) return true;
    const ctor = (p as { constructor?: unknown }).constructor;
    if (typeof ctor === "function" && ctor.name) return true;
  }
  return false;
}

function classInstance(proto: object, path: string, options: CloneOptions | undefined): SerializationError {
  const ctor = Object.prototype.hasOwnProperty.call(proto, "constructor")
    ? (proto as { constructor?: { name?: unknown } }).constructor
    : undefined;
  const what =
    typeof ctor === "function" && typeof ctor.name === "string" && ctor.name
      ? `an instance of class \`${ctor.name}\``
      : "an object that inherits from another object (not Object.prototype)";
  const lost = `${what} would arrive as a plain object with its own fields only, without its methods or prototype.`;
  if (options?.returned)
    return new SerializationError(path, `${lost} Return its fields (\`{ ...obj }\`), or what its methods compute.`);
  const rebuild =
    options?.shipFunction && typeof ctor === "function" && ctor.name
      ? `, and rebuild it there (the class itself travels as source: \`push({ ${ctor.name} })\` or pass it as an argument)`
      : "";
  return new SerializationError(path, `${lost} Send its fields (\`{ ...obj }\`)${rebuild}.`);
}

const HOST_TAGS = new Set([
  "[object MessagePort]",
  "[object Blob]",
  "[object File]",
  "[object ReadableStream]",
  "[object WritableStream]",
  "[object Socket]",
  "[object Generator]",
  "[object AsyncGenerator]",
]);
function isHostObject(tag: string): boolean {
  return HOST_TAGS.has(tag);
}

function readProp(obj: object, key: string | number, path: string): unknown {
  try {
    return (obj as Record<string | number, unknown>)[key];
  } catch (err) {
    throw new SerializationError(
      `${path}${typeof key === "number" ? `[${key}]` : propLabel(key)}`,
      `reading it threw ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
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
