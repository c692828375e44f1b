import { InvalidOptionError, SerializationError, sourceHash, type FunctionRecord } from "@ptcluster/protocol";
import { moduleRefOf, moduleSource } from "./module-function.js";

/** A function as it travels: its source and the hash engines cache it by. */
export interface ShippedFunction {
  hash: string;
  src: string;
  /** Its name, for `ptcluster status`: `anonymous` if it has none, `(module) name` for a module function. */
  name: string;
}

const cache = new WeakMap<object, ShippedFunction>();
/**
 * The same, by source text: a function written inline (`view.apply((x) => x * 2, i)` in a loop,
 * or typed again at the REPL) is a new object each time, with the same source. Bounded; the
 * oldest entry goes first.
 */
const bySource = new Map<string, Omit<ShippedFunction, "name">>();
const MAX_BY_SOURCE = 1_000;

/**
 * Prepares a function for shipping: its source, normalised into an expression (methods such as
 * `{ f(x) { … } }` become one), and its hash. Cached per function object, so a map of 100,000
 * items reads the source once.
 */
export function shipFunction(fn: unknown): ShippedFunction {
  if (typeof fn !== "function") {
    throw new InvalidOptionError(`Expected a function to run, got \`${String(fn)}\` (${typeof fn})`);
  }
  const hit = cache.get(fn);
  if (hit) return hit;
  const ref = moduleRefOf(fn);
  if (ref) {
    const src = moduleSource(ref);
    const shipped = {
      hash: sourceHash(src),
      src,
      name: `(module) ${ref.name === "default" ? `default of ${ref.url.slice(ref.url.lastIndexOf("/") + 1)}` : ref.name}`,
    };
    cache.set(fn, shipped);
    return shipped;
  }
  const raw = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(raw)) {
    throw new InvalidOptionError(
      `Cannot ship \`${fn.name || "anonymous"}\`: it is a built-in or bound function, whose source is not available. Wrap it: \`(x) => ${fn.name || "f"}(x)\`.`,
    );
  }
  let code = bySource.get(raw);
  if (!code) {
    const src = asExpression(raw);
    code = { hash: sourceHash(src), src };
    if (bySource.size >= MAX_BY_SOURCE) bySource.delete(bySource.keys().next().value as string);
    bySource.set(raw, code);
  }
  // The name is the function's own: two functions with one source may be named apart.
  const shipped = { ...code, name: fn.name || "anonymous" };
  cache.set(fn, shipped);
  return shipped;
}

/**
 * Prepares a function found inside a value (a `push`, a `scope`, an argument) to travel as
 * source, as the task function does; the engine compiles it once per source in its namespace.
 * A function whose source is not available is refused here, naming it and saying what works.
 */
export function shipValueFunction(fn: (...a: unknown[]) => unknown, path: string): FunctionRecord {
  const name = fn.name || "anonymous";
  let shipped: ShippedFunction;
  try {
    shipped = shipFunction(fn);
  } catch (err) {
    const label = fn.name ? `\`${fn.name}\`` : "an anonymous function";
    const reason = /native code|built-in or bound/.test((err as Error).message)
      ? `${label} is a built-in or bound function: its source is not available, so it cannot travel. ` +
        "Refer to it by name inside the shipped code instead (built-ins exist on the engines too), send the function it binds, " +
        "or define it on the engines with `execute`."
      : `${label} cannot travel as source: ${(err as Error).message}. Export it from a module and ship \`moduleFunction(url, name)\`, or define it on the engines with \`execute\`.`;
    throw new SerializationError(path, reason, { cause: err });
  }
  return { hash: shipped.hash, src: shipped.src, name, path };
}

function parses(expr: string): boolean {
  try {
    // Compiles without running: checks that the source is a valid expression.
    new Function(`return (${expr}\n);`);
    return true;
  } catch {
    return false;
  }
}

function asExpression(src: string): string {
  if (parses(src)) return src;
  // Object and class methods print as `name(…) { … }`, `async name(…) { … }` or `*name(…) { … }`.
  const method = `Object.values({ ${src} })[0]`;
  if (parses(method)) return method;
  throw new InvalidOptionError(
    `Cannot ship this function: its source does not parse on its own:\n${src.slice(0, 200)}`,
  );
}
