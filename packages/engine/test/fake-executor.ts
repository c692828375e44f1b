import { createLogger, type EngineTask, type Part, type TaskResult } from "@ptcluster/protocol";
import { TaskRunner, type TaskRunnerOptions } from "../src/supervisor/task-runner.js";
import type { ExecutorPort } from "../src/supervisor/executor-host.js";
import type { FromExecutor, ToExecutor } from "../src/executor/protocol.js";
import { packFrames } from "../src/shared/transfer.js";

/** An executor without a thread: records what the supervisor posts; the test plays its reports. */
export class FakeExecutor implements ExecutorPort {
  readonly knownFns = new Set<string>();
  outOfMemory = false;
  exitedBy: number | undefined;
  exitCall: string | undefined;
  readonly posted: ToExecutor[] = [];
  /** What its start table holds: tasks running now, as `[id, started]`. */
  table: Array<[number, number]> = [];
  terminated = false;
  constructor(
    readonly send: (m: FromExecutor) => void,
    readonly exit: (code: number) => void,
  ) {}
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  post(msg: ToExecutor): void {
    this.posted.push(msg);
  }
  run(items: Array<{ task: EngineTask; part: Part }>): void {
    this.posted.push({ type: "tasks", items: items.map(({ task }) => ({ task: { ...task }, data: packFrames([]) })) });
  }
  runningNow(): Array<[number, number]> {
    return this.table;
  }
  terminate(): Promise<void> {
    this.terminated = true;
    return Promise.resolve();
  }
  /** Ids of the tasks posted so far, in order. */
  get taskIds(): number[] {
    return this.posted.flatMap((m) => (m.type === "tasks" ? m.items.map((i) => i.task.id) : []));
  }
  get cancels(): number[][] {
    return this.posted.flatMap((m) => (m.type === "drop" && m.abort !== undefined ? [m.ids] : []));
  }
  /** Ids asked back (dropped if not started, left running otherwise). */
  get asked(): number[][] {
    return this.posted.flatMap((m) => (m.type === "drop" && m.abort === undefined ? [m.ids] : []));
  }
  report(r: {
    started?: number;
    at?: number;
    results?: Array<Partial<TaskResult> & { id: number }>;
    dropped?: number[];
  }): void {
    this.send({
      type: "report",
      started: r.started !== undefined ? [[r.started, r.at ?? Date.now()]] : [],
      dropped: r.dropped ?? [],
      results: (r.results ?? []).map((x) => ({
        result: { ok: true, engine: 0, started: Date.now(), completed: Date.now(), ...x },
        data: packFrames([Buffer.from("v")]),
      })),
    });
  }
}

export const PART: Part = { body: Buffer.from("p"), frames: [] };
export const task = (id: number, extra: Partial<EngineTask> = {}): EngineTask => ({ id, op: "apply", ...extra });

export function setup(concurrency = 1, prefetch = 0, extra: Partial<TaskRunnerOptions> = {}) {
  const executors: FakeExecutor[] = [];
  const results: TaskResult[] = [];
  const resets: string[] = [];
  const released: number[][] = [];
  const runner = new TaskRunner({
    concurrency,
    prefetch,
    graceMs: 1_000,
    onReleased: (ids) => released.push(ids),
    maxResultBytes: 1e6,
    logger: createLogger({ name: "test", level: "silent" }),
    onResult: (r) => results.push(r),
    onReset: (reason) => resets.push(reason),
    newExecutor: (send, exit) => {
      const e = new FakeExecutor(send, exit);
      executors.push(e);
      return e;
    },
    ...extra,
  });
  const ex = () => executors.at(-1) as FakeExecutor;
  const errorOf = (id: number) => results.find((r) => r.id === id)?.sysError;
  return { runner, executors, ex, results, resets, released, errorOf };
}
