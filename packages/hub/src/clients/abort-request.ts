import type { AbortSummary, HubRequest, Logger } from "@ptcluster/protocol";
import type { EngineRegistry } from "../engines/engine-registry.js";
import { engineOf } from "../tasks/task-state.js";
import type { TaskTable } from "../tasks/task-table.js";

export type AbortRequest = Extract<HubRequest, { what: "abort" }>;

/** A msg id as `ar.msgIds` gives it: the client's id (hex) and its task number. */
const MSG_ID = /^([0-9a-f]{32}):(\d+)$/;

/** Caps what one request may name, so a client cannot make the controller walk a huge list. */
const MAX_NAMED = 100_000;
/** Of those, how many not known yet one request may have the controller wait for (1 s each). */
const MAX_AWAITED = 10_000;

function numbers(v: unknown): number[] {
  return Array.isArray(v) ? v.slice(0, MAX_NAMED).filter((x): x is number => Number.isInteger(x)) : [];
}

/**
 * The controller ids an `abort` request names (`clientKey`: the asking client, whose own `ids`
 * they are), and what cancelling them will stop: running (by the engines' last heartbeats) or
 * not started. Ids a client cannot know (malformed msg ids, unknown engines) select nothing.
 */
export function selectForAbort(
  req: AbortRequest,
  clientKey: string,
  tasks: TaskTable,
  engines: EngineRegistry,
): { ids: number[]; summary: AbortSummary; notYet: Array<{ from: string; id: number }> } {
  const chosen = new Set<number>();
  if (req.all === true) for (const id of tasks.ids()) chosen.add(id);
  for (const n of numbers(req.ids)) for (const id of tasks.idsOf(clientKey, n)) chosen.add(id);
  const named = Array.isArray(req.tasks) ? req.tasks.slice(0, MAX_NAMED) : [];
  const notYet: Array<{ from: string; id: number }> = [];
  for (const msgId of named) {
    const m = typeof msgId === "string" ? MSG_ID.exec(msgId) : null;
    if (!m) continue;
    const [from, id] = [m[1] as string, Number(m[2])];
    const ids = tasks.idsOf(from, id);
    for (const hubId of ids) chosen.add(hubId);
    if (ids.length === 0 && notYet.length < MAX_AWAITED) notYet.push({ from, id });
  }
  for (const e of numbers(req.engines)) for (const id of engines.get(e)?.inflight ?? []) chosen.add(id);

  const summary: AbortSummary = { running: 0, queued: 0, engines: [] };
  const held = new Set<number>();
  for (const id of chosen) {
    const rec = tasks.get(id);
    const on = rec ? engineOf(rec.state) : -1;
    if (on >= 0) held.add(on);
    if (on >= 0 && engines.get(on)?.current.has(id)) summary.running++;
    else summary.queued++;
  }
  summary.engines = [...held].sort((a, b) => a - b);
  if (notYet.length) summary.awaited = notYet.length;
  return { ids: [...chosen], summary, notYet };
}

/** The `abort` request's handler: selects the tasks, has them cancelled, says what it cancelled. */
export function abortTasks(
  tasks: TaskTable,
  engines: EngineRegistry,
  cancel: (ids: number[]) => void,
  log: Logger,
): (client: Buffer, req: AbortRequest) => AbortSummary {
  return (client, req) => {
    const { ids, summary, notYet } = selectForAbort(req, client.toString("latin1"), tasks, engines);
    if (ids.length) log.info({ ...summary, tasks: ids.length }, "tasks aborted by a client");
    cancel(ids);
    // A msg id the controller does not know may be a direct task whose header is on its way (a
    // stream of calls sends headers every 20 ms): cancelled when it comes, if it comes soon.
    for (const { from, id } of notYet)
      tasks.awaited.wait(
        from,
        id,
        () => cancel(tasks.idsOf(from, id)),
        () => undefined,
      );
    return summary;
  };
}
