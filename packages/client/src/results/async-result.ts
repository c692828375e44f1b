import { PtclusterError, type TaskResult } from "@ptcluster/protocol";
import { noteResult } from "./result-scope.js";

/** What is known about one task on one engine. */
export interface TaskMetadata {
  engineId: number;
  submitted: Date;
  started: Date | undefined;
  completed: Date | undefined;
  received: Date | undefined;
  status: "pending" | "ok" | "error";
  stdout: string;
  stderr: string;
  /** Times the task was started: more than 1 after retries or after its engine died. */
  attempts: number;
}

/** Metadata of a task just submitted (engine unknown, -1, for load-balanced tasks). */
export function pendingMetadata(engineId: number, submitted = new Date()): TaskMetadata {
  return {
    engineId,
    submitted,
    started: undefined,
    completed: undefined,
    received: undefined,
    status: "pending",
    stdout: "",
    stderr: "",
    attempts: 0,
  };
}

/** Records what a task's result says about it: engine, times, captured output, attempts, outcome. */
export function recordResult(m: TaskMetadata, r: TaskResult): void {
  m.engineId = r.engine;
  m.started = new Date(r.started);
  m.completed = new Date(r.completed);
  m.received = new Date();
  m.stdout = r.stdout ?? "";
  m.stderr = r.stderr ?? "";
  m.attempts = r.attempts ?? 1;
  m.status = r.ok ? "ok" : "error";
}

/** Raised by `AsyncResult.get(timeout)` when the result is not ready in time (the task goes on). */
export class ResultTimeoutError extends PtclusterError {
  constructor(timeoutMs: number) {
    super(
      "ERR_PTC_RESULT_TIMEOUT",
      `The result was not ready within ${timeoutMs} ms; the task is still running. Wait longer, or cancel it with \`abort()\`.`,
    );
  }
}

/**
 * A result on its way: thenable (`await ar`), with `get(timeout)`, `ready()`, `wait()`,
 * `successful()`, `progress` and per-task `metadata` (engine, times, captured stdout and stderr).
 */
export class AsyncResult<T> implements PromiseLike<T> {
  private readonly promise: Promise<T>;
  private settled: "pending" | "ok" | "error" = "pending";
  /** @internal */ done = 0;

  /** @internal How views make one (stripped from the public types). */
  static create<T>(
    executor: (resolve: (v: T) => void, reject: (e: unknown) => void) => void,
    metadata: TaskMetadata[],
    onAbort?: (reason?: unknown) => void,
    ids: readonly number[] = [],
    clientId = "",
  ): AsyncResult<T> {
    return new AsyncResult<T>(executor, metadata, onAbort, ids, clientId);
  }

  // Protected: the public types offer no constructor (results come from views).
  protected constructor(
    executor: (resolve: (v: T) => void, reject: (e: unknown) => void) => void,
    /** Per-task metadata, in target order. */
    readonly metadata: TaskMetadata[],
    private readonly onAbort?: (reason?: unknown) => void,
    private readonly ids: readonly number[] = [],
    private readonly clientId = "",
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      executor(
        (v) => {
          this.settled = "ok";
          resolve(v);
        },
        (e) => {
          this.settled = "error";
          reject(e);
        },
      );
    });
    // A result nobody awaits must not crash the process with an unhandled rejection.
    this.promise.catch(() => undefined);
    // Tools such as the REPL cancel what a line of user code started (results/result-scope.ts).
    noteResult(this);
  }

  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.promise.then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.promise.catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.promise.finally(onfinally);
  }

  /** The result; with `timeoutMs`, rejects with `ResultTimeoutError` if it is not ready by then. */
  get(timeoutMs?: number): Promise<T> {
    if (timeoutMs === undefined || this.settled !== "pending") return this.promise;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ResultTimeoutError(timeoutMs)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Waits until done (or `timeoutMs`); true if done. Never rejects. */
  async wait(timeoutMs?: number): Promise<boolean> {
    try {
      await this.get(timeoutMs);
    } catch (err) {
      if (err instanceof ResultTimeoutError) return false;
    }
    return true;
  }

  /** True once every task has finished. */
  ready(): boolean {
    return this.settled !== "pending";
  }

  /** True if finished without error, false if failed, undefined while pending. */
  successful(): boolean | undefined {
    return this.settled === "pending" ? undefined : this.settled === "ok";
  }

  /** How many of its tasks have finished. */
  get progress(): number {
    return this.done;
  }

  /** How many tasks it is made of. */
  get total(): number {
    return this.metadata.length;
  }

  /** Captured stdout of each task, in target order. */
  get stdout(): string[] {
    return this.metadata.map((m) => m.stdout);
  }

  /** Captured stderr of each task, in target order. */
  get stderr(): string[] {
    return this.metadata.map((m) => m.stderr);
  }

  /** Time from submission to the last result (ms), once ready. */
  get elapsed(): number | undefined {
    const first = Math.min(...this.metadata.map((m) => m.submitted.getTime()));
    const last = Math.max(...this.metadata.map((m) => m.received?.getTime() ?? Number.NaN));
    return Number.isNaN(last) ? undefined : last - first;
  }

  /** This client's ids of the tasks behind this result (for `rc.abort(ids)`); empty until submitted. */
  get taskIds(): number[] {
    return [...this.ids];
  }

  /**
   * Ids that name these tasks across clients (`"<client id>:<task id>"`): if this client goes away,
   * another can fetch the results with `rc.getResult(id)` while the controller keeps them.
   */
  get msgIds(): string[] {
    return this.ids.map((id) => `${this.clientId}:${id}`);
  }

  /** Cancels tasks that have not finished (queued ones are removed; running ones are signalled). */
  abort(reason?: unknown): void {
    this.onAbort?.(reason);
  }

  get [Symbol.toStringTag](): string {
    return "AsyncResult";
  }
}
