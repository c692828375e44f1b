import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidOptionError } from "@ptcluster/protocol";

const MODULE_REF = Symbol.for("ptcluster.moduleFunction");

/** A module's exported function as the client holds it: same arguments, its result as a promise. */
export type ModuleFunction<F extends (...args: never[]) => unknown> = (
  ...args: Parameters<F>
) => Promise<Awaited<ReturnType<F>>>;

/** Where a module function lives: a module URL the engines can import, and the export's name. */
export interface ModuleRef {
  url: string;
  name: string;
}

/**
 * A function exported by a module, to run on engines that import the module themselves: for code
 * that imports packages, or is too large to ship as source. TypeScript modules work (through tsx).
 * Engines on other hosts need the module at the same path (a shared file system, as on HPC clusters).
 *
 * ```ts
 * import type { resize } from "./images.ts";
 * const resizeTask = moduleFunction<typeof resize>(new URL("./images.ts", import.meta.url), "resize");
 * await rc.loadBalancedView().map(resizeTask, files);
 * ```
 *
 * Calling the returned function in the client imports the module and calls the export, so the
 * same code runs serially too; it returns a promise, since the import is asynchronous.
 */
export function moduleFunction<F extends (...args: never[]) => unknown>(
  module: string | URL,
  exportName = "default",
): ModuleFunction<F> {
  let url: string;
  if (module instanceof URL) url = module.href;
  else if (typeof module === "string" && /^[a-z][a-z0-9+.-]*:/i.test(module) && !/^[a-z]:[\\/]/i.test(module))
    url = module;
  else if (typeof module === "string") url = pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
  else
    throw new InvalidOptionError(
      `Expected \`module\` to be a path, a file URL or a URL object, got \`${String(module)}\` (${typeof module})`,
    );
  if (typeof exportName !== "string" || !exportName)
    throw new InvalidOptionError(`Expected \`exportName\` to be a non-empty string, got \`${String(exportName)}\``);
  const ref: ModuleRef = { url, name: exportName };
  const local = async (...args: unknown[]) => {
    const m = (await import(url)) as Record<string, unknown>;
    const f = m[exportName];
    if (typeof f !== "function") throw new TypeError(`${url} has no exported function \`${exportName}\``);
    return (f as (...a: unknown[]) => unknown)(...args);
  };
  Object.defineProperty(local, MODULE_REF, { value: ref });
  Object.defineProperty(local, "name", { value: exportName });
  return local as unknown as ModuleFunction<F>;
}

/** The module reference behind a function made by {@link moduleFunction}, if it is one. */
export function moduleRefOf(fn: unknown): ModuleRef | undefined {
  return typeof fn === "function" ? (fn as unknown as Record<symbol, ModuleRef | undefined>)[MODULE_REF] : undefined;
}

/** The source engines compile for a module function: it imports the module (once) and calls the export. */
export function moduleSource(ref: ModuleRef): string {
  const u = JSON.stringify(ref.url);
  const n = JSON.stringify(ref.name);
  return `(...args) => __ptcImport(${u}).then((m) => { const f = m[${n}]; if (typeof f !== "function") throw new TypeError(${JSON.stringify(`${ref.url} has no exported function \`${ref.name}\``)}); return f(...args); })`;
}
