import { connect, type AbortSelector, type AbortSummary } from "@ptcluster/client";
import { UsageError } from "../util/usage.js";

export interface AbortOptions {
  profile: string;
  clusterId: string;
  /** Msg ids of tasks (`ar.msgIds`, as `ptcluster status` shows them). */
  tasks: string[];
  /** Every task queued or running on these engines. */
  engines: number[];
  /** Every task of every client. */
  all: boolean;
  json: boolean;
}

const MSG_ID = /^[0-9a-f]{32}:\d+$/;

/** `3 tasks`, `1 task`. */
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/** The one line `ptcluster abort` prints. */
export function describeAbort(s: AbortSummary): string {
  const total = s.running + s.queued;
  // Msg ids the controller did not know: finished, never sent, or a direct task whose header is on its way.
  const awaited = s.awaited
    ? ` ${count(s.awaited, "named task")} not known to the controller (finished, or never sent) ${s.awaited === 1 ? "is" : "are"} cancelled if ${s.awaited === 1 ? "it appears" : "they appear"} within 1 s.`
    : "";
  if (total === 0) return `Nothing to abort: no such task is queued or running.${awaited}`;
  const on = s.engines.length ? ` on ${s.engines.length === 1 ? "engine" : "engines"} ${s.engines.join(", ")}` : "";
  return `Cancelled ${count(total, "task")}${on}: ${s.running} running (signalled, stopped by force after a grace period), ${s.queued} queued.${awaited}`;
}

/**
 * `ptcluster abort`: cancels tasks of any client: by msg id, every task on some engines
 * (`--engine`), or every task (`--all`). Nothing is aborted without one of them: a bare
 * `ptcluster abort` is a usage error that says what to name (`ptcluster status` shows what runs).
 */
export async function abort(o: AbortOptions): Promise<void> {
  const bad = o.tasks.find((t) => !MSG_ID.test(t));
  if (bad !== undefined)
    throw new UsageError(`expected task ids like <client id>:<number> (from ar.msgIds), got \`${bad}\``);
  if (!o.all && o.tasks.length === 0 && o.engines.length === 0)
    throw new UsageError(
      "name what to abort: task ids (from ar.msgIds), --engine ID, or --all (`ptcluster status` shows what runs)",
    );
  const rc = await connect({ profile: o.profile, clusterId: o.clusterId, timeout: 3_000 });
  try {
    const unknown = o.engines.filter((e) => !rc.ids.includes(e));
    if (unknown.length)
      throw new Error(
        `No engine ${unknown.join(", ")} in this cluster (engines: ${rc.ids.join(", ") || "none"}); nothing was aborted.`,
      );
    const selector: AbortSelector = { tasks: o.tasks, engines: o.engines, all: o.all };
    const summary = await rc.abort(selector);
    process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `${describeAbort(summary)}\n`);
  } finally {
    await rc.close();
  }
}
