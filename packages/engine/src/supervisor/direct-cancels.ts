import type { Part, TaskResult } from "@ptcluster/protocol";
import { EMPTY_PART } from "@ptcluster/protocol";
import { CANCELLED_CODE } from "./direct-entry.js";

export interface ExecCancelsDeps {
  /** Tells the executor these keys are cancelled (false: it owns no clients' links). */
  cancelKeys(keys: string[]): boolean;
  /** A result for the controller. */
  report(result: TaskResult, part: Part): void;
  engineId(): number;
}

/**
 * Direct tasks cancelled before the executor reported them (`DirectTasks`): the executor may have
 * one from the client's own link, even running. Its verdict goes once the executor answers
 * (`settled`): at once if it never started there, when it ends if it runs.
 */
export class ExecCancels {
  /** key → the controller's id. */
  private readonly waiting = new Map<string, number>();

  constructor(private readonly d: ExecCancelsDeps) {}

  cancel(key: string, hubId: number): void {
    if (!this.d.cancelKeys([key])) return this.report(hubId, false);
    this.waiting.set(key, hubId);
  }

  /** Whether the executor has not answered for this key yet. */
  waits(key: string): boolean {
    return this.waiting.has(key);
  }

  /** The executor's answer (`exec_cancelled`). */
  settled(key: string, started: boolean): void {
    const hubId = this.waiting.get(key);
    this.waiting.delete(key);
    if (hubId !== undefined) this.report(hubId, started);
  }

  /** The executor ended: the tasks cancelled there ended with it. */
  executorGone(): void {
    for (const key of [...this.waiting.keys()]) this.settled(key, true);
  }

  private report(hubId: number, started: boolean): void {
    const now = Date.now();
    const sysError = {
      code: CANCELLED_CODE,
      message: started ? "The task was cancelled while running." : "The task was cancelled before it started.",
    };
    this.d.report(
      { id: hubId, ok: false, engine: this.d.engineId(), started: now, completed: now, sysError },
      EMPTY_PART,
    );
  }
}
