/**
 * Helpers that code compiled by tsx (esbuild) calls by name, so that functions shipped from a
 * `tsx` script run unchanged in the engine namespace: esbuild defines them at the top of each
 * module, and a function's source carries only the calls. `__name` names nested functions;
 * `__using` and `__callDispose` implement `using` and `await using` (explicit resource
 * management, which Node 20 does not parse).
 */

type Disposal = [async: boolean, dispose?: () => unknown, value?: unknown];

const symbol = (name: "dispose" | "asyncDispose"): symbol => Symbol[name] ?? Symbol.for(`Symbol.${name}`);

function name(target: object, value: string): object {
  return Object.defineProperty(target, "name", { value, configurable: true });
}

/** `using x = value` (`async`: `await using`): registers the value's disposer on the block's stack. */
function using(stack: Disposal[], value: unknown, async: boolean): unknown {
  if (value === null || value === undefined) {
    if (async) stack.push([true]);
    return value;
  }
  if (typeof value !== "object" && typeof value !== "function") throw new TypeError("Object expected");
  const v = value as Record<symbol, unknown>;
  let dispose = async ? v[symbol("asyncDispose")] : undefined;
  let sync: unknown;
  if (dispose === undefined) {
    dispose = v[symbol("dispose")];
    if (async) sync = dispose;
  }
  if (typeof dispose !== "function") throw new TypeError("Object not disposable");
  if (typeof sync === "function") {
    const inner = sync as () => unknown;
    dispose = function (this: unknown) {
      try {
        inner.call(this);
      } catch (e) {
        return Promise.reject(e);
      }
      return undefined;
    };
  }
  stack.push([async, dispose as () => unknown, value]);
  return value;
}

/** `SuppressedError` where the runtime has it (Node 20 does not): an error that carries the one it hid. */
function suppressed(error: unknown, hidden: unknown, message: string): Error {
  const Native = (globalThis as { SuppressedError?: new (e: unknown, s: unknown, m: string) => Error }).SuppressedError;
  if (Native) return new Native(error, hidden, message);
  return Object.assign(new Error(message), { name: "SuppressedError", error, suppressed: hidden });
}

/** The end of a `using` block: disposes in reverse order, keeping the first error and suppressing later ones. */
function callDispose(stack: Disposal[], error: unknown, hasError: boolean): unknown {
  const fail = (e: unknown) => {
    error = hasError ? suppressed(e, error, "An error was suppressed during disposal") : e;
    hasError = true;
  };
  const next = (): unknown => {
    let it: Disposal | undefined;
    while ((it = stack.pop()) !== undefined) {
      try {
        const result = it[1]?.call(it[2]);
        if (it[0])
          return Promise.resolve(result).then(next, (e: unknown) => {
            fail(e);
            return next();
          });
      } catch (e) {
        fail(e);
      }
    }
    if (hasError) throw error;
    return undefined;
  };
  return next();
}

/** Defines the helpers on the engine's global scope. */
export function defineTranspilerHelpers(g: Record<string, unknown>): void {
  g["__name"] = name;
  g["__using"] = using;
  g["__callDispose"] = callDispose;
}
