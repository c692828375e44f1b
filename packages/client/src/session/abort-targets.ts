import { InvalidOptionError, type HubRequest } from "@ptcluster/protocol";
import type { AbortSelector, Abortable } from "../client-types.js";
import { describeValue, nonNegativeInt, rejectUnknownKeys } from "../options.js";

/** A msg id as `ar.msgIds` gives it: a client's id (32 hex digits) and its task number. */
export const MSG_ID = /^[0-9a-f]{32}:\d+$/;

const SELECTOR_KEYS = new Set(["tasks", "engines", "all"]);

/** What `rc.abort(x)` was given, sorted out. */
export type AbortTargets =
  | { kind: "selector"; selector: AbortSelector }
  | { kind: "list"; results: Abortable[]; ids: number[]; msgIds: string[] };

function checkMsgId(v: unknown): string {
  if (typeof v !== "string" || !MSG_ID.test(v))
    throw new InvalidOptionError(
      `Expected a task id like "<client id>:<number>" (from \`ar.msgIds\`), got ${describeValue(v)}`,
    );
  return v;
}

function isAbortable(x: unknown): x is Abortable {
  return typeof x === "object" && x !== null && typeof (x as Abortable).abort === "function";
}

/**
 * Sorts `rc.abort`'s argument into results (cancelled through their own `abort()`), this client's
 * task ids, msg ids of any client, or a selector object. Checked eagerly: a wrong value throws
 * `InvalidOptionError` quoting it, before anything is cancelled.
 */
export function splitAbortTargets(target: unknown): AbortTargets {
  if (typeof target === "object" && target !== null && !isAbortable(target) && !(Symbol.iterator in target)) {
    const sel = target as AbortSelector;
    rejectUnknownKeys(sel, SELECTOR_KEYS, "abort");
    if (sel.tasks !== undefined) {
      if (!Array.isArray(sel.tasks))
        throw new InvalidOptionError(`Expected \`tasks\` to be an array of msg ids, got ${describeValue(sel.tasks)}`);
      sel.tasks.forEach(checkMsgId);
    }
    if (sel.engines !== undefined) {
      if (!Array.isArray(sel.engines))
        throw new InvalidOptionError(
          `Expected \`engines\` to be an array of engine ids, got ${describeValue(sel.engines)}`,
        );
      for (const e of sel.engines) nonNegativeInt("engines", e);
    }
    if (sel.all !== undefined && typeof sel.all !== "boolean")
      throw new InvalidOptionError(`Expected \`all\` to be a boolean, got ${describeValue(sel.all)}`);
    return { kind: "selector", selector: sel };
  }
  const list: unknown[] =
    typeof target === "number" || typeof target === "string" || isAbortable(target)
      ? [target]
      : [...(target as Iterable<unknown>)];
  const out: AbortTargets = { kind: "list", results: [], ids: [], msgIds: [] };
  for (const x of list) {
    if (typeof x === "number") out.ids.push(nonNegativeInt("task id", x));
    else if (typeof x === "string") out.msgIds.push(checkMsgId(x));
    else if (isAbortable(x)) out.results.push(x);
    else
      throw new InvalidOptionError(
        `Expected results, task ids (\`ar.taskIds\`) or msg ids (\`ar.msgIds\`) to abort, got ${describeValue(x)}`,
      );
  }
  return out;
}

/** The controller's `abort` request for a selector. */
export function abortRequest(sel: AbortSelector): Extract<HubRequest, { what: "abort" }> {
  return {
    what: "abort",
    ...(sel.tasks?.length ? { tasks: [...sel.tasks] } : {}),
    ...(sel.engines?.length ? { engines: [...sel.engines] } : {}),
    ...(sel.all ? { all: true } : {}),
  };
}
