import type { Part, SharedCallMsg, SharedReplyMsg, SharedWithdrawMsg } from "@ptcluster/protocol";
import type { CommIn, CommOutMsg } from "./comm-transport.js";
import type { ExecutorPort, NewExecutor } from "./executor-host.js";
import type { MemoryWatch } from "./memory-watch.js";
import { packPartList, unpackPartList } from "../shared/part-bytes.js";
import { packComm, unpackComm } from "../shared/comm-bytes.js";
import { COMM_COUNTS_BYTES, type ClientSetup, type CommSetup, type FromExecutor } from "../executor/protocol.js";
import { ExecJournal } from "../shared/exec-journal.js";

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
  /** An `engine.comm` message of the executor, to send on (`relay`: through the controller, whatever the path). */
  onComm?(msg: CommOutMsg, parts: Part[], relay: boolean): void;
  /** What the executor of generation `gen` says of its own `engine.comm` links (a route asked, a message to keep). */
  onCommLinks?(m: CommLinksMsg, gen: number): void;
  /** What the current executor says of clients' links it owns (`executor/client-tasks.ts`). */
  onExecClients?(m: ExecClientsMsg): void;
}

/** The executor's messages about clients' direct links it owns. */
export type ExecClientsMsg = Extract<
  FromExecutor,
  { type: "client_listen" | "client_link" | "exec_report" | "exec_lost" | "exec_cancelled" }
>;

/** The executor's messages about its own `engine.comm` links. */
export type CommLinksMsg = Extract<FromExecutor, { type: "comm_route" | "comm_keep" }>;

/**
 * The one executor an engine runs at a time, and its successors: each is a generation (1, 2, …).
 * Messages and exits of a replaced executor are ignored, every new one is told who it is, and
 * what it holds in shared state is its generation's (freed at the controller when it is replaced).
 */
export class ExecutorSlot {
  current: ExecutorPort;
  generation = 0;
  private init: { engineId: number; host: string; uuid: string } | undefined;
  /** Executor links (`PeerLinks`), given to every executor from `setCommLinks` on. */
  private comm: Omit<CommSetup, "counts"> | undefined;
  /** The current executor's counts on its own links (`CommSetup.counts`), and those of the ones before it. */
  private counts = new SharedArrayBuffer(COMM_COUNTS_BYTES);
  private countsBefore = { sent: 0, bytesSent: 0, bytesReceived: 0 };
  /** Clients' links owned by executors (`ClientTasks`), given to every executor from `setClientLinks` on. */
  private clients: ClientSetup | undefined;
  /** Where the current executor writes the starts of its clients' links' tasks (read once it ends). */
  private journal: ExecJournal | undefined;
  get currentJournal(): ExecJournal | undefined {
    return this.journal;
  }

  /** The current executor's endpoint (`host:port`), once it has bound it. */
  execAddress: string | undefined;

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

  /** Turns on executor links: this executor and every later one bind an endpoint and dial peers' executors. */
  setCommLinks(setup: Omit<CommSetup, "counts">): void {
    this.comm = setup;
    this.current.post({ type: "comm_setup", setup: { ...setup, counts: this.counts } });
  }

  /** Turns on clients' links to executors: this executor and every later one bind an endpoint for them. */
  setClientLinks(setup: ClientSetup): void {
    if (this.clients) return;
    this.clients = setup;
    this.current.post({ type: "client_setup", setup, gen: this.generation });
  }

  /** Whether executors own clients' links (`setClientLinks` was called). */
  get clientLinks(): boolean {
    return this.clients !== undefined;
  }

  /** Cancels these direct tasks by key in the executor, if it owns clients' links (false: it has none). */
  cancelKeys(keys: string[]): boolean {
    if (!this.clients) return false;
    this.current.post({ type: "exec_cancel", keys });
    return true;
  }

  /** Closes the current executor's links to clients (they took this engine for dead and dial again). */
  dropClientLinks(): void {
    if (this.clients) this.current.post({ type: "client_drop" });
  }

  /** Executor links are on and the current executor has not bound its endpoint yet. */
  get execComing(): boolean {
    return this.comm !== undefined && this.execAddress === undefined;
  }

  /** Messages the executors sent on their own links, and the bytes (the supervisor's own paths count the rest). */
  get linkCounts(): { sent: number; bytesSent: number; bytesReceived: number } {
    const now = countsOf(this.counts);
    const before = this.countsBefore;
    return {
      sent: before.sent + now.sent,
      bytesSent: before.bytesSent + now.bytesSent,
      bytesReceived: before.bytesReceived + now.bytesReceived,
    };
  }

  /** The answer to a `comm_route` of the executor of generation `gen` (dropped if it was replaced). */
  commRoute(gen: number, id: number, address: string | undefined): void {
    if (gen === this.generation) this.current.post({ type: "comm_route", id, ...(address ? { address } : {}) });
  }

  /** Resolves once the current executor is ready; its memory is watched from then on. */
  async whenReady(): Promise<void> {
    await this.current.whenReady();
    this.o.memory?.executorReady();
  }

  /**
   * Starts the next executor; the old one (to terminate), the generation that ended and its
   * journal (the starts of its tasks, to read once it is gone).
   */
  replace(): { old: ExecutorPort; ended: number; journal: ExecJournal | undefined } {
    this.o.memory?.stop();
    const old = this.current;
    const ended = this.generation;
    const journal = this.journal;
    this.current = this.spawn();
    return { old, ended, journal };
  }

  /** The controller answered a shared-state call: to the executor that made it, if it is still the current one. */
  sharedReply(msg: SharedReplyMsg, parts: Part[]): void {
    if (msg.gen !== this.generation) return;
    const data = packPartList(parts);
    this.current.post({ type: "shared_reply", msg, data }, data.data.buffers);
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
    this.countsBefore = this.linkCounts;
    this.counts = new SharedArrayBuffer(COMM_COUNTS_BYTES);
    this.execAddress = undefined;
    const host: ExecutorPort = this.o.newExecutor(
      (m) => {
        if (host !== this.current) return;
        if (m.type === "shared") this.o.onShared?.(m.msg, unpackPartList(m.data), gen);
        else if (m.type === "comm_out") this.o.onComm?.(m.msg, unpackComm(m.data), m.relay === true);
        else if (m.type === "comm_listen") this.execAddress = m.address;
        else if (m.type === "comm_route" || m.type === "comm_keep") this.o.onCommLinks?.(m, gen);
        else if (
          m.type === "client_listen" ||
          m.type === "client_link" ||
          m.type === "exec_report" ||
          m.type === "exec_lost" ||
          m.type === "exec_cancelled"
        )
          this.o.onExecClients?.(m);
        else this.o.onMessage(m);
      },
      (code) => {
        if (host === this.current) this.o.onExit(host, code);
      },
    );
    // Every executor journals its starts: one replaced with reports held tells what it started.
    this.journal = new ExecJournal(ExecJournal.allocate());
    host.post({ type: "journal", journal: this.journal.buffer });
    if (this.init) host.post({ type: "init", ...this.init });
    if (this.comm) host.post({ type: "comm_setup", setup: { ...this.comm, counts: this.counts } });
    if (this.clients) host.post({ type: "client_setup", setup: this.clients, gen });
    return host;
  }
}

/** An executor's counts on its own links, as it writes them (`CommSetup.counts`). */
function countsOf(sab: SharedArrayBuffer): { sent: number; bytesSent: number; bytesReceived: number } {
  const bytes = new BigInt64Array(sab, 8, 2);
  return {
    sent: Atomics.load(new Int32Array(sab, 0, 1), 0),
    bytesSent: Number(Atomics.load(bytes, 0)),
    bytesReceived: Number(Atomics.load(bytes, 1)),
  };
}
