import * as vm from "node:vm";
import { rewriteTopLevelAwait } from "./top-level-await.js";

type Factory = (scope?: Record<string, unknown>) => (...args: unknown[]) => unknown;

const MAX_CACHED = 2_000;
const cache = new Map<string, Factory>();

/**
 * Compiles a shipped function once per (source, scope names) in this thread's global scope, the
 * engine namespace: free names resolve against what `push` and `execute` put there. Scope names
 * are bound as parameters of a wrapper, so they shadow namespace globals for this function only.
 */
export function compileFunction(hash: string, src: string, scope: readonly string[] | undefined): Factory {
  const key = scope?.length ? `${hash}|${scope.join(",")}` : hash;
  const hit = cache.get(key);
  if (hit) return hit;
  const names = scope ?? [];
  for (const n of names) {
    if (!/^[A-Za-z_$][\w$]*$/.test(n)) throw new SyntaxError(`\`${n}\` is not a valid name for a scope variable`);
  }
  const code = `(function (__ptc_scope) { ${names.length ? `const { ${names.join(", ")} } = __ptc_scope;` : ""} return (${src}\n); })`;
  const script = new vm.Script(code, {
    filename: `ptcluster-task-${hash}.js`,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const factory = script.runInThisContext() as Factory;
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
  cache.set(key, factory);
  return factory;
}

/** A function that travelled as a value, and what binds the names of its task's `scope` once the payload is decoded. */
export interface RevivedFunction {
  fn: unknown;
  bind: ((scope: Record<string, unknown>) => void) | undefined;
}

/** The file name a function shipped as a value compiles under: failures in it are traced back to it by this name. */
export const VALUE_FILE = /ptcluster-fn-([\w-]+)\.js/;

/**
 * Compiles a function that travelled inside a value (`push`, `scope`, arguments), once per
 * (source, scope names), in the engine namespace like a task function: its free names resolve
 * against the engine's globals and, inside an `apply` or `map` with a `scope`, against the scope's
 * names, bound by `bind` after the whole payload is decoded (scoped helpers may call each other).
 */
export function compileValueFunction(hash: string, src: string, scope: readonly string[] | undefined): RevivedFunction {
  const names = scope ?? [];
  const key = `${hash}#value|${names.join(",")}`;
  let factory = valueCache.get(key);
  if (!factory) {
    for (const n of names) {
      if (!/^[A-Za-z_$][\w$]*$/.test(n)) throw new SyntaxError(`\`${n}\` is not a valid name for a scope variable`);
    }
    const list = names.join(", ");
    const code = names.length
      ? `(function () { let ${list}; return [(${src}\n), (__ptc_scope) => { ({ ${list} } = __ptc_scope); }]; })`
      : `(function () { return [(${src}\n), undefined]; })`;
    const script = new vm.Script(code, {
      filename: `ptcluster-fn-${hash}.js`,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    factory = script.runInThisContext() as ValueFactory;
    if (valueCache.size >= MAX_CACHED) valueCache.delete(valueCache.keys().next().value as string);
    valueCache.set(key, factory);
  }
  const [fn, bind] = factory();
  return { fn, bind };
}

type ValueFactory = () => [unknown, ((scope: Record<string, unknown>) => void) | undefined];
const valueCache = new Map<string, ValueFactory>();

/** Drops what was compiled from the function `hash` (under any scope names). */
export function forgetFunction(hash: string): void {
  for (const key of cache.keys()) if (key === hash || key.startsWith(`${hash}|`)) cache.delete(key);
}

/** The value of a global binding, including top-level `let`, `const` and `class`. */
export function readGlobalBinding(name: string): unknown {
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new SyntaxError(`\`${name}\` is not a name`);
  return new vm.Script(name, { filename: "ptcluster-pull.js" }).runInThisContext();
}

/** Runs code in the engine namespace (`execute`); returns the completion value. */
export async function runCode(code: string): Promise<unknown> {
  try {
    const script = new vm.Script(code, {
      filename: "ptcluster-execute.js",
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    return script.runInThisContext();
  } catch (err) {
    // Top-level await is not allowed in a script; run such code as an async function, keeping
    // its declarations as globals and its completion value.
    if (err instanceof SyntaxError && /await/.test(err.message)) {
      const script = new vm.Script(rewriteTopLevelAwait(code), {
        filename: "ptcluster-execute.js",
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      });
      return await (script.runInThisContext() as Promise<unknown>);
    }
    throw err;
  }
}
