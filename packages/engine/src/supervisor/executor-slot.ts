import type { Part, SharedCallMsg, SharedReplyMsg, SharedWithdrawMsg } from "@ptcluster/protocol";
import type { CommIn, CommOutMsg } from "./comm-transport.js";
import type { ExecutorPort, NewExecutor } from "./executor-host.js";
import type { MemoryWatch } from "./memory-watch.js";
import { asPart } from "../executor/shared-port.js";
import { packComm, unpackComm } from "../shared/comm-bytes.js";
import type { FromExecutor } from "../executor/protocol.js";

export interface ExecutorSlotOptions {
  newExecutor: NewExecutor;
  /** Watches the executor's memory (started once an executor is ready, stopped while one is replaced). */
  memory: MemoryWatch | undefined;
  /** What the current executor reports (shared-state calls go to `onShared` instead). */
  onMessage(m: FromExecutor): void;
  /** The current executor's thread ended (`host` is the one that ended). */
  onExit(host: ExecutorPort, code: number): void;
  /** A shared-state call of the executor of generation `gen`, to relay to the controller. */
  onShared?(msg: SharedCallMsg | SharedWithdrawMsg, parts: Part[], gen: number): void;
  /** An `engine.comm` message of the executor, to send on. */
  onComm?(msg: CommOutMsg, parts: Part[]): void;
}

/**
 * The one executor an engine runs at a time, and its successors: each is a generation (1, 2, …).
 * Messages and exits of a replaced executor are ignored, every new one is told who it is, and
 * what it holds in shared state is its generation's (freed at the controller when it is replaced).
 */
export class ExecutorSlot {
  current: ExecutorPort;
  generation = 0;
  private init: { engineId: number; host: string; uuid: string } | undefined;

  constructor(private readonly o: ExecutorSlotOptions) {
    this.current = this.spawn();
  }

  get engineId(): number | undefined {
    return this.init?.engineId;
  }

  /** Tells the executor (and every later one) who it is. */
  setIdentity(engineId: number, host: string, uuid: string): void {
    this.init = { engineId, host, uuid };
    this.current.post({ type: "init", ...this.init });
  }

  /** Resolves once the current executor is ready; its memory is watched from then on. */
  async whenReady(): Promise<void> {
    await this.current.whenReady();
    this.o.memory?.executorReady();
  }

  /** Starts the next executor; the old one (to terminate) and the generation that ended. */
  replace(): { old: ExecutorPort; ended: number } {
    this.o.memory?.stop();
    const old = this.current;
    const ended = this.generation;
    this.current = this.spawn();
    return { old, ended };
  }

  /** The controller answered a shared-state call: to the executor that made it, if it is still the current one. */
  sharedReply(msg: SharedReplyMsg, parts: Part[]): void {
    if (msg.gen === this.generation) this.current.post({ type: "shared_reply", msg, parts });
  }

  /** An `engine.comm` message for this engine: to the current executor; the generation it went to. */
  commIn(msg: CommIn, parts: Part[]): number {
    const data = packComm(parts);
    this.current.post({ type: "comm_in", msg, data }, data?.buffers);
    return this.generation;
  }

  async terminate(): Promise<void> {
    this.o.memory?.stop();
    await this.current.terminate();
  }

  private spawn(): ExecutorPort {
    const gen = ++this.generation;
    const host: ExecutorPort = this.o.newExecutor(
      (m) => {
        if (host !== this.current) return;
        if (m.type === "shared") this.o.onShared?.(m.msg, m.parts.map(asPart), gen);
        else if (m.type === "comm_out") this.o.onComm?.(m.msg, unpackComm(m.data));
        else this.o.onMessage(m);
      },
      (code) => {
        if (host === this.current) this.o.onExit(host, code);
      },
    );
    if (this.init) host.post({ type: "init", ...this.init });
    return host;
  }
}
