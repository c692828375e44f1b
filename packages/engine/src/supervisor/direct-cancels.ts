import type { Part, TaskResult } from "@ptcluster/protocol";
import { EMPTY_PART } from "@ptcluster/protocol";
import { CANCELLED_CODE, splitKey } from "./direct-entry.js";
import type { ExecJournal } from "../shared/exec-journal.js";
import { ID_BASE, LINK_SPAN } from "../executor/protocol.js";

export interface ExecCancelsDeps {
  /** Tells the executor these keys are cancelled (false: it owns no clients' links). */
  cancelKeys(keys: string[]): boolean;
  /** A result for the controller. */
  report(result: TaskResult, part: Part): void;
  engineId(): number;
  /** The current executor's journal of starts. */
  journal(): ExecJournal | undefined;
  /** How long the executor has to answer before the journal is asked instead (ms). */
  graceMs(): number;
  /** The client of one of the current executor's links (`client_link`), if the supervisor knows it. */
  clientOfLink(link: number): string | undefined;
}

/**
 * Direct tasks cancelled before the executor reported them (`DirectTasks`): the executor may have
 * one from the client's own link, even running. Its verdict goes once the executor answers
 * (`settled`): at once if it never started there, when it ends if it runs. An executor whose
 * thread a task holds answers nothing: after the grace period, a task its journal shows it never
 * started is reported as cancelled then (the executor reads the cancel before it starts anything,
 * so it never will), rather than when the thread is free.
 */
export class ExecCancels {
  /** key → the controller's id, and the executor's journal count its reports had covered then. */
  private readonly waiting = new Map<string, { hubId: number; from: number; timer: NodeJS.Timeout }>();
  /** The journal count of the executor's last report (`exec_report.journaled`). */
  private reportedStarts = 0;

  constructor(private readonly d: ExecCancelsDeps) {}

  cancel(key: string, hubId: number): void {
    if (!this.d.cancelKeys([key])) return this.report(hubId, false);
    // A start reported before now would have had the supervisor hold the task (it would not be
    // cancelled here): if it started, its start is in the journal from `reportedStarts` on.
    const timer = setTimeout(() => this.check(key), this.d.graceMs()).unref();
    this.waiting.set(key, { hubId, from: this.reportedStarts, timer });
  }

  /** The executor reported every start before its journal's `count`th. */
  reported(count: number): void {
    this.reportedStarts = count;
  }

  /** Whether the executor has not answered for this key yet. */
  waits(key: string): boolean {
    return this.waiting.has(key);
  }

  /** The executor's answer (`exec_cancelled`). */
  settled(key: string, started: boolean): void {
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    clearTimeout(w.timer);
    this.report(w.hubId, started);
  }

  /** The executor ended: the tasks cancelled there ended with it (its successor's journal starts over). */
  executorGone(): void {
    for (const key of [...this.waiting.keys()]) this.settled(key, true);
    this.reportedStarts = 0;
  }

  /** Grace is over without the executor's answer: reported now if its journal shows it never started. */
  private check(key: string): void {
    const w = this.waiting.get(key);
    if (w && this.neverStarted(key, w.from)) this.settled(key, false);
  }

  private neverStarted(key: string, from: number): boolean {
    const starts = this.d.journal()?.since(from);
    if (!starts) return false; // no journal, or more starts since than it keeps
    const [client, localId] = splitKey(key);
    for (const rid of starts) {
      if (rid < ID_BASE || rid % LINK_SPAN !== localId) continue; // the supervisor's tasks are journaled too
      // A link not known yet may be this client's: not proven.
      const of = this.d.clientOfLink(Math.floor((rid - ID_BASE) / LINK_SPAN));
      if (of === undefined || of === client) return false;
    }
    return true;
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
