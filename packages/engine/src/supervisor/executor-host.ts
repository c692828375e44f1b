import { Worker } from "node:worker_threads";
import type { EngineTask } from "@ptcluster/protocol";
import type { FromExecutor, ToExecutor } from "../executor/protocol.js";
import { packFrames } from "../shared/transfer.js";

/** Owns the executor thread: starts it, feeds it tasks, relays its results. */
export class ExecutorHost {
  private worker: Worker;
  private ready: Promise<void>;
  /** Function hashes whose source this executor has compiled (reset with the executor). */
  readonly knownFns = new Set<string>();

  constructor(private readonly onResult: (msg: Extract<FromExecutor, { type: "result" }>) => void, private readonly onExit: (code: number) => void) {
    this.worker = new Worker(new URL("../executor/worker.js", import.meta.url), { stdout: false, stderr: false });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("message", (m: FromExecutor) => (m.type === "ready" ? resolve() : reject(new Error("executor did not start"))));
      this.worker.once("error", reject);
    });
    this.worker.on("message", (m: FromExecutor) => {
      if (m.type === "result") this.onResult(m);
    });
    this.worker.on("error", () => undefined);
    this.worker.on("exit", (code) => this.onExit(code));
  }

  whenReady(): Promise<void> {
    return this.ready;
  }

  post(msg: ToExecutor): void {
    this.worker.postMessage(msg);
  }

  run(task: EngineTask, body: Buffer, frames: Buffer[]): void {
    const data = packFrames([body, ...frames]);
    this.worker.postMessage({ type: "task", task, data } satisfies ToExecutor, data.buffers);
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
