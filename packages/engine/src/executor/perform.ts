/**
 * What a task does in the engine namespace: its payload decoded (functions in it compiled here,
 * bound to the task's scope), then its op performed. The executor thread's scheduling, reports
 * and result encoding are `worker.ts`'s.
 */
import {
  decodeValue,
  type EngineTask,
  type FunctionRecord,
  type ShippedFunctionOrigin,
  type Part,
  unpackParts,
} from "@ptcluster/protocol";
import { compileFunction, compileValueFunction, forgetFunction, readGlobalBinding, runCode } from "./compile.js";
import { taskStore } from "./capture.js";
import { runStage } from "./stage.js";
import { mapItems } from "./map-items.js";

const g = globalThis as Record<string, unknown>;

/** Function sources by hash: the supervisor sends each source once per executor. */
export const sources = new Map<string, string>();

function shippedFunction(
  task: EngineTask,
  scope: Record<string, unknown> | undefined,
): (...args: unknown[]) => unknown {
  if (!task.fn) throw new Error(`${task.op} task without a function`);
  if (task.src !== undefined) sources.set(task.fn, task.src);
  const src = sources.get(task.fn);
  if (src === undefined) throw new Error(`the source of function ${task.fn} never reached this executor`);
  const fn = compileFunction(task.fn, src, task.scope)(scope);
  if (typeof fn !== "function") throw new TypeError(`the shipped code is not a function (it is ${typeof fn})`);
  return fn;
}

/** Functions that travelled as values, by hash: their name and path, to name them in errors. */
const origins = new Map<string, ShippedFunctionOrigin>();
export const originOf = (hash: string) => origins.get(hash);

/**
 * Decodes a payload, compiling the functions in it in the engine namespace; those of an `apply`
 * or `map` then see the task's `scope` names, bound once the whole payload (scope included) exists.
 */
function decodePayload(
  task: EngineTask,
  body: Buffer,
  frames: Buffer[],
  scopeOf = (payload: unknown) => (payload as unknown[])[1],
): unknown {
  const binds: Array<(scope: Record<string, unknown>) => void> = [];
  const revive = (rec: FunctionRecord) => {
    if (origins.size >= 2_000 && !origins.has(rec.hash)) origins.delete(origins.keys().next().value as string);
    origins.set(rec.hash, { name: rec.name, path: rec.path });
    const { fn, bind } = compileValueFunction(rec.hash, rec.src, task.op === "push" ? undefined : task.scope);
    if (bind) binds.push(bind);
    return fn;
  };
  const payload = decodeValue(body, frames, revive);
  if (binds.length) {
    const scope = (scopeOf(payload) ?? {}) as Record<string, unknown>;
    for (const bind of binds) bind(scope);
  }
  return payload;
}

/** A pipeline stage's task: the first part is the stage's scope (empty for none), the others its items. */
function stage(task: EngineTask, parts: Part[]): Promise<Part> {
  const [scopePart, ...items] = parts;
  const scope =
    scopePart && scopePart.body.length > 0
      ? (decodePayload(task, scopePart.body, scopePart.frames, (p) => p) as Record<string, unknown>)
      : undefined;
  const fn = shippedFunction(task, scope);
  const decode = (item: Part) => decodePayload(task, item.body, item.frames, () => scope);
  return runStage(task.stage ?? "map", fn, items, decode, originOf, taskStore.getStore()?.controller.signal);
}

/** The supervisor dropped these functions: no task will run them again here. */
export function forgetSources(fns: readonly string[]): void {
  for (const fn of fns) {
    sources.delete(fn);
    forgetFunction(fn);
  }
}

export async function perform(task: EngineTask, body: Buffer, frames: Buffer[]): Promise<unknown> {
  // A stage's items are decoded one by one, each failing on its own.
  const payload = task.op === "stage" ? unpackParts({ body, frames }) : decodePayload(task, body, frames);
  switch (task.op) {
    case "apply": {
      const [args, scope] = payload as [unknown[], Record<string, unknown> | undefined];
      return await shippedFunction(task, scope)(...args);
    }
    case "map": {
      const [argLists, scope] = payload as [unknown[][], Record<string, unknown> | undefined];
      return await mapItems(shippedFunction(task, scope), argLists, taskStore.getStore()?.controller.signal);
    }
    case "stage":
      return await stage(task, payload as Part[]);
    case "execute":
      return await runCode(payload as string);
    case "push": {
      const ns = payload as Record<string, unknown>;
      for (const [k, v] of Object.entries(ns)) g[k] = v;
      return Object.keys(ns).length;
    }
    case "pull": {
      const names = payload as string[];
      // `let`, `const` and `class` at the top level of `execute` live in the global lexical
      // scope, not on globalThis: evaluate the (validated) identifier to reach them too.
      return names.map((n) => (n in g ? g[n] : readGlobalBinding(n)));
    }
  }
}
