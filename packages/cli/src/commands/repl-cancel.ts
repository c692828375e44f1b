import { AsyncResult, MapResult, MapRun, Pipeline } from "@ptcluster/client";
import { ScopedSharedCall, type ScopedResult } from "@ptcluster/client/result-scope";

/** What Ctrl-C cancelled of one line: single tasks, map items, `imap` streams of unknown length, waiting shared-state calls, running pipelines. */
export interface Cancelled {
  tasks: number;
  items: number;
  streams: number;
  sharedCalls: number;
  pipelines: number;
}

/** Why the tasks were cancelled, as their `TaskCancelledError`'s cause says. */
export const CTRL_C = "Ctrl-C at ptcluster repl";

/**
 * Aborts every result of `results` that has not finished, and counts what that cancelled: the
 * unfinished tasks of an apply (one per engine still working on it), the unfinished items of a map,
 * or an `imap` stream whose length is unknown (it keeps no count of what is left).
 */
export function cancelUnfinished(results: Iterable<ScopedResult>): Cancelled {
  const c: Cancelled = { tasks: 0, items: 0, streams: 0, sharedCalls: 0, pipelines: 0 };
  for (const r of results) {
    if (r instanceof ScopedSharedCall) {
      if (!r.pending) continue;
      c.sharedCalls++;
    }
    if (r instanceof Pipeline) {
      if (!r.running) continue;
      c.pipelines++;
    } else if (r instanceof MapRun) {
      // A stream does not say whether it ended; with a known length its progress tells.
      if (r.length === undefined) c.streams++;
      else c.items += Math.max(0, r.length - r.progress);
    } else if (r instanceof MapResult) {
      if (r.ready()) continue;
      c.items += Math.max(0, r.total - r.progress);
    } else if (r instanceof AsyncResult) {
      if (r.ready()) continue;
      c.tasks += Math.max(1, r.metadata.filter((m) => m.status === "pending").length);
    }
    r.abort(CTRL_C);
  }
  return c;
}

/** "Cancelled: 4 tasks of this line (Ctrl-C)", or undefined when nothing was cancelled. */
export function describeCancelled(c: Cancelled): string | undefined {
  const parts: string[] = [];
  const count = (n: number, what: string) => {
    if (n > 0) parts.push(`${n} ${what}${n === 1 ? "" : "s"}`);
  };
  count(c.tasks, "task");
  count(c.items, "map item");
  count(c.streams, "imap stream");
  count(c.sharedCalls, "shared-state call");
  count(c.pipelines, "pipeline");
  if (parts.length === 0) return undefined;
  const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
  return `Cancelled: ${list} of this line (Ctrl-C)`;
}
