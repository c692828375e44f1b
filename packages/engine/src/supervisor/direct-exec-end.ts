import type { TaskResult } from "@ptcluster/protocol";
import { DONE_KEEP, type Entry } from "./direct-entry.js";
import { failedResult, type LossError } from "./executor-loss.js";
import type { ExecutorEnd } from "./task-runner-options.js";
import { ID_BASE, LINK_SPAN } from "../executor/protocol.js";

/**
 * A task that ran in an executor that ended before its result was reported to the supervisor or
 * acknowledged by its client: the result went with the executor, and the task is not run again.
 */
export const RESULT_LOST: LossError = {
  code: "ERR_PTC_EXECUTOR_RESET",
  message:
    "The engine's executor ended after this task ran and before its result reached the client: the result is lost with it, and the task is not run again (it may have had effects). Its namespace is empty again.",
};

/** What `DirectTasks` lends to settle the tasks of an executor that ended. */
export interface EndView {
  engineId(): number;
  /** A key's entry, or "done" (reported and forgotten). */
  entry(key: string): Entry | "done" | undefined;
  /** Records a task of an executor's link as its report would (a copy resent on the lean link gives way). */
  register(rid: number, key: string, client: string, localId: number): void;
  /** Its result goes to the client's lean link, then (once acknowledged) to the controller. */
  finish(result: TaskResult): void;
}

/**
 * The tasks an executor took from clients' own links, started, and did not report before it
 * ended (out of memory, terminated: docs/architecture.md, "The direct path"). Its journal
 * (`ExecJournal`) names them; their clients send them again on the lean link, and none runs
 * twice: one running when the executor ended fails as a task the supervisor held would (the same
 * error: a crash, out of memory, a replacement), at once; one that had finished fails with
 * `RESULT_LOST` if its client sends it again (it did not get the result; one that did never asks).
 */
export class ExecEnded {
  private readonly lost = new Map<string, TaskResult>();
  /** Clients of the executors' links, by link number (`client_link`: a task's id there names its link). */
  readonly links = new Map<number, string>();

  constructor(private readonly v: EndView) {}

  /** The key of a task of an executor's link, by its id there. */
  keyOf(rid: number): { key: string; client: string; localId: number } | undefined {
    const client = this.links.get(Math.floor((rid - ID_BASE) / LINK_SPAN));
    const localId = rid % LINK_SPAN;
    return client === undefined ? undefined : { key: `${client}:${localId}`, client, localId };
  }

  ended(end: ExecutorEnd): void {
    const running = new Map(end.running);
    const drop: number[] = [];
    for (const rid of end.started) {
      const k = rid >= ID_BASE ? this.keyOf(rid) : undefined;
      if (!k) continue;
      const { key, client, localId } = k;
      const e = this.v.entry(key);
      // Reported (the runner holds it, or its result is known): settled the usual way.
      if (e === "done" || (e && (e.result !== undefined || e.rid === rid))) continue;
      const at = running.get(rid);
      const result = failedResult(
        rid,
        this.v.engineId(),
        at ?? Date.now(),
        at === undefined ? RESULT_LOST : end.lost(rid),
      );
      // Its client sent it again already (the copy waits in the runner's queue): answered now.
      if (e) drop.push(e.rid);
      if (e || at !== undefined) {
        this.v.register(rid, key, client, localId);
        this.v.finish(result);
      } else {
        this.lost.set(key, result);
        if (this.lost.size > DONE_KEEP) this.lost.delete(this.lost.keys().next().value as string);
      }
    }
    if (drop.length) end.drop(drop);
  }

  /** A task a client sent (again) on the lean link: true if it ran in an executor that ended (answered here). */
  settle(key: string): boolean {
    if (this.lost.size === 0) return false;
    const result = this.lost.get(key);
    if (!result) return false;
    this.lost.delete(key);
    const at = key.lastIndexOf(":");
    this.v.register(result.id, key, key.slice(0, at), Number(key.slice(at + 1)));
    this.v.finish(result);
    return true;
  }
}
