import { Worker } from "node:worker_threads";
import type { EngineTask, Part, ShmConfig } from "@ptcluster/protocol";
import type { ExecutorData, FromExecutor, ToExecutor } from "../executor/protocol.js";
import { packFrames, type Packed } from "../shared/transfer.js";
import { StartTable } from "../shared/start-table.js";

/** What the task runner needs of an executor (a thread, or a fake one in unit tests). */
export interface ExecutorPort {
  /** Function hashes whose source this executor has compiled (reset with the executor). */
  readonly knownFns: Set<string>;
  /** The executor ran out of memory (its `resourceLimits`, or the default heap limit). */
  readonly outOfMemory: boolean;
  /** The task that called `process.exit` or `process.abort`, and the call (the executor says so just before it exits). */
  readonly exitedBy: number | undefined;
  readonly exitCall: string | undefined;
  whenReady(): Promise<void>;
  /** Posts `msg`; the `transfer` buffers move to the executor (they are unusable here after). */
  post(msg: ToExecutor, transfer?: ArrayBuffer[]): void;
  /** Posts tasks in one message. */
  run(items: Array<{ task: EngineTask; part: Part }>): void;
  /** The tasks it runs now, as `[id, started]`, read from the `StartTable` (reports may lag). */
  runningNow(): Array<[number, number]>;
  terminate(): Promise<void>;
}

/** Starts an executor that reports to `onMessage` and, when its thread ends, to `onExit`. */
export type NewExecutor = (onMessage: (msg: FromExecutor) => void, onExit: (code: number) => void) => ExecutorPort;

/** Owns one executor thread: starts it, feeds it tasks, relays what it sends back. */
export class ExecutorHost implements ExecutorPort {
  private worker: Worker;
  private ready: Promise<void>;
  /** Function hashes whose source this executor has compiled (reset with the executor). */
  readonly knownFns = new Set<string>();

  /** The executor ran out of memory (its `resourceLimits`, or the default heap limit). */
  outOfMemory = false;
  exitedBy: number | undefined;
  exitCall: string | undefined;
  private readonly startTable: StartTable;

  constructor(
    concurrency: number,
    maxMemoryMb: number | undefined,
    { maxResultBytes, shm }: { maxResultBytes: number; shm?: ShmConfig | undefined },
    private readonly onMessage: (msg: FromExecutor) => void,
    private readonly onExit: (code: number) => void,
  ) {
    const startTable = StartTable.allocate(concurrency);
    this.startTable = new StartTable(startTable);
    const workerData: ExecutorData = { concurrency, maxResultBytes, startTable, ...(shm ? { shm } : {}) };
    this.worker = new Worker(new URL("../executor/worker.js", import.meta.url), {
      stdout: false,
      stderr: false,
      workerData,
      ...(maxMemoryMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: maxMemoryMb } } : {}),
    });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("message", (m: FromExecutor) =>
        m.type === "ready" ? resolve() : reject(new Error("executor did not start")),
      );
      this.worker.once("error", reject);
    });
    this.worker.on("message", (m: FromExecutor) => {
      // Posted before the thread exits, so it arrives before the exit event (Node drains the port first).
      if (m.type === "exiting") [this.exitedBy, this.exitCall] = [m.task, m.call];
      else if (m.type !== "ready") this.onMessage(m);
    });
    this.worker.on("error", (err: Error & { code?: string }) => {
      if (err.code === "ERR_WORKER_OUT_OF_MEMORY") this.outOfMemory = true;
    });
    this.worker.on("exit", (code) => this.onExit(code));
  }

  whenReady(): Promise<void> {
    return this.ready;
  }

  post(msg: ToExecutor, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(msg, transfer);
  }

  /** Posts tasks in one message, their bytes transferred rather than cloned. */
  run(items: Array<{ task: EngineTask; part: Part }>): void {
    const transfer: ArrayBuffer[] = [];
    const packed: Array<{ task: EngineTask; data: Packed }> = items.map(({ task, part }) => {
      const data = packFrames([part.body, ...part.frames]);
      transfer.push(...data.buffers);
      return { task, data };
    });
    this.worker.postMessage({ type: "tasks", items: packed } satisfies ToExecutor, transfer);
  }

  runningNow(): Array<[number, number]> {
    return this.startTable.read();
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
