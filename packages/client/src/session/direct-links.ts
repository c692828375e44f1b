import {
  EMPTY_PART,
  encodedSize,
  type ClientTask,
  type ConnectionInfo,
  type DirectCounts,
  type DirectResultsMsg,
  type EngineInfo,
  type Logger,
  type Part,
  type TaskResult,
} from "@ptcluster/protocol";
import { DirectLink } from "./direct-link.js";
import { LeanLink, type LeanLinkOptions } from "./lean-link.js";

/** A link to one engine: lean (the engine's `lean` endpoint) or through its ZeroMQ peer endpoint. */
type Link = DirectLink | LeanLink;

/**
 * Results that came straight from engines wait this long (ms) to be reported to the controller in
 * one message, unless the client sends it something sooner (the next call's task headers): on a
 * busy machine every message costs every process it crosses.
 */
const DIRECT_REPORT_MS = 20;

export interface DirectLinksOptions {
  connection: ConnectionInfo;
  routingId: string;
  maxMessageBytes: number;
  heartbeatMs: number;
  engineInfo(id: number): EngineInfo | undefined;
  /** A result that came straight from an engine, for the task's sink. */
  result(r: TaskResult, part: Part): void;
  /** Tasks for the controller now (those this client cannot send straight; bodies of direct tasks whose link failed, `rs`). */
  submit(tasks: ClientTask[], parts: Part[]): void;
  /** Sends the controller what is owed (`flush`), then anything else it has for it. */
  flush(): void;
  log: Logger;
}

/**
 * The client's side of the direct path (docs/architecture.md): DirectView tasks go straight to
 * each target engine that this client reaches, and the controller gets only their headers
 * (`dx`), for its records. Per engine, tasks keep their order: a link is used only once nothing
 * sent to that engine through the controller is still pending, and a link that fails hands its
 * pending tasks to the controller (`rs`) before anything later goes that way. A result comes once
 * to its sink, by whichever path brought it first (the controller may bring a copy: a failure it
 * made, or a result the engine could not deliver here).
 */
export class DirectLinks {
  readonly counts: Required<Omit<DirectCounts, "bytesSent" | "bytesReceived">> = {
    tasks: 0,
    results: 0,
    viaController: 0,
    failed: 0,
    lean: 0,
    executor: 0,
  };
  readonly #links = new Map<number, Link>();
  /** Bytes of links closed since (engines gone), so the totals never go back. */
  readonly #closedBytes = { sent: 0, received: 0 };
  /** Engines whose link failed, not dialled again (until they register anew, at another address). */
  readonly #unreachable = new Map<number, string>();
  /** Tasks sent to an engine through the controller, no result yet, per engine (task ids). */
  readonly #viaController = new Map<number, Set<number>>();
  /** Direct tasks: per task id, per engine, whether its result came. */
  readonly #owed = new Map<number, Map<number, boolean>>();
  /** Sources of the functions this client's direct tasks ran (the submitter sends each once per connection). */
  readonly #sources = new Map<string, string>();
  readonly #done: TaskResult[] = [];
  /** Batches whose tasks went straight to engines: their headers, for the controller. */
  readonly #later: Array<{ tasks: ClientTask[]; parts: Part[] }> = [];
  /** A flush is asked for: after this turn (`soon`), or a little later (`late`). */
  #owing: false | "late" | "soon" = false;
  /** When task headers last went to the controller (`performance.now()`). */
  #headersAt = -Infinity;
  #holding = true;
  #timer: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  readonly #key: Buffer;
  readonly #lean: boolean;
  /** Tasks go to engines' executor threads' own links where engines offer them (not with `PTCLUSTER_DIRECT=lean`). */
  readonly #exec: boolean;
  /**
   * Off: every task goes through the controller. CURVE clusters stay on that path (an engine's peer
   * endpoint has a CURVE key pair of its own, which clients are not given), and so does a client
   * run with `PTCLUSTER_DIRECT=off` (to measure, or to rule the direct path out).
   */
  readonly enabled: boolean;

  constructor(private readonly o: DirectLinksOptions) {
    this.#key = Buffer.from(o.connection.key, "hex");
    this.enabled = !o.connection.curve && process.env["PTCLUSTER_DIRECT"] !== "off";
    this.#lean = process.env["PTCLUSTER_DIRECT"] !== "zmq";
    // Executors' own links by default; `PTCLUSTER_DIRECT=lean` keeps each engine's supervisor's.
    this.#exec = process.env["PTCLUSTER_DIRECT"] !== "lean";
  }

  /**
   * Sends what it can of a batch straight to engines; returns what goes to the controller: every
   * task, those sent straight without their bodies (`dx`).
   */
  route(tasks: ClientTask[], parts: Part[]): { tasks: ClientTask[]; parts: Part[]; direct: boolean } {
    if (!this.enabled) return { tasks, parts, direct: false };
    const out = { tasks: [] as ClientTask[], parts: [] as Part[], direct: false };
    const direct = new Map<Link, { tasks: ClientTask[]; parts: Part[] }>();
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const part = parts[i] ?? EMPTY_PART;
      if (t.lb || t.to.length === 0) {
        out.tasks.push(t);
        out.parts.push(part);
        continue;
      }
      const straight: number[] = [];
      const other: number[] = [];
      if (t.fn && t.src !== undefined) this.#sources.set(t.fn, t.src);
      const src = t.fn ? this.#sources.get(t.fn) : undefined;
      for (const e of t.to) {
        const link = this.#linkFor(e);
        if (link?.state === "ready" && !this.#viaController.get(e)?.size) {
          straight.push(e);
          let batch = direct.get(link);
          if (!batch) direct.set(link, (batch = { tasks: [], parts: [] }));
          // The source goes with every direct task: an engine's executor may not have it yet, or no more.
          batch.tasks.push({ ...t, to: [e], ...(src !== undefined ? { src } : {}) });
          batch.parts.push(part);
        } else other.push(e);
      }
      if (straight.length) {
        const owed = new Map<number, boolean>();
        for (const e of straight) owed.set(e, false);
        this.#owed.set(t.id, owed);
        out.tasks.push({ ...t, to: straight, dx: 1 });
        out.parts.push(EMPTY_PART);
      }
      if (other.length) {
        for (const e of other) this.#noteViaController(e, t.id);
        out.tasks.push(straight.length ? { ...t, to: other } : t);
        out.parts.push(part);
      }
    }
    for (const [link, b] of direct) {
      out.direct = true;
      link.send(b.tasks, b.parts);
      this.counts.tasks += b.tasks.length;
      if (link instanceof LeanLink) this.counts.lean += b.tasks.length;
    }
    return out;
  }

  /**
   * Whether a result (from either path) goes to its sink: false for the second copy of a direct
   * task's result. Tasks that went through the controller are counted off here.
   */
  accept(r: TaskResult): boolean {
    this.#viaController.get(r.engine)?.delete(r.id);
    // Settled on its link even if its sink let it go first (an aborted call): a task left pending
    // there would hold later ones off the executor's link.
    const link = this.#links.get(r.engine);
    if (link instanceof LeanLink) link.settled(r.id);
    else link?.pending.delete(r.id);
    const owed = this.#owed.get(r.id);
    const came = owed?.get(r.engine);
    // Not a direct task on that engine (a task may go straight to some engines, not to others).
    if (came === undefined) return true;
    if (came) return false;
    owed?.set(r.engine, true);
    return true;
  }

  /** The task's sink is done with it. */
  release(id: number): void {
    // Off its links too: a call aborted here gets no result through them (the controller's verdict
    // is its), and a task left pending would hold later ones off an executor's link.
    for (const e of this.#owed.get(id)?.keys() ?? []) {
      const link = this.#links.get(e);
      if (link instanceof LeanLink) link.settled(id);
      else link?.pending.delete(id);
    }
    this.#owed.delete(id);
  }

  /** Engine `id` is gone: its link closes; the controller reports what it ran (`EngineLostError`). */
  engineDown(id: number): void {
    const link = this.#links.get(id);
    this.#links.delete(id);
    this.#viaController.delete(id);
    if (link) {
      this.#retire(link);
      void link.close();
    }
  }

  /** What `connectionStats().direct` says: the counts, and the bytes of every direct link this client had. */
  report(): Required<DirectCounts> {
    const { sent, received } = this.#bytes();
    let executor = this.counts.executor;
    for (const link of this.#links.values()) if (link instanceof LeanLink) executor += link.viaExecutor;
    return { ...this.counts, executor, bytesSent: sent, bytesReceived: received };
  }

  #bytes(): { sent: number; received: number } {
    const total = { ...this.#closedBytes };
    for (const link of this.#links.values()) {
      total.sent += link.bytes.sent;
      total.received += link.bytes.received;
    }
    return total;
  }

  #retire(link: Link): void {
    if (link instanceof LeanLink) this.counts.executor += link.viaExecutor;
    this.#closedBytes.sent += link.bytes.sent;
    this.#closedBytes.received += link.bytes.received;
  }

  /**
   * Whether the links hold the process (while work is pending). A link's reader lets go only once
   * the receive it has in flight returns, and an idle engine sends nothing: a link still idle a
   * heartbeat later asks its engine for an answer (`peer_hello` again), so a finished script exits.
   */
  hold(on: boolean): void {
    this.#holding = on;
    for (const link of this.#links.values()) link.hold(on);
    clearTimeout(this.#idle);
    if (on || this.#links.size === 0) return;
    this.#idle = setTimeout(() => {
      if (!this.#holding) for (const link of this.#links.values()) link.nudge();
    }, this.o.heartbeatMs).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#idle);
    const links = [...this.#links.values()];
    for (const link of links) this.#retire(link);
    this.#links.clear();
    await Promise.all(links.map((l) => l.close()));
  }

  #noteViaController(engine: number, id: number): void {
    let ids = this.#viaController.get(engine);
    if (!ids) this.#viaController.set(engine, (ids = new Set()));
    ids.add(id);
    this.counts.viaController++;
  }

  /** The link to engine `id`, dialled on first use (undefined: it cannot have one). */
  #linkFor(id: number): Link | undefined {
    const info = this.o.engineInfo(id);
    // The engine's lean endpoint where it has one (`PTCLUSTER_DIRECT=zmq`: its ZeroMQ peer endpoint, to compare).
    const lean = this.#lean ? info?.lean : undefined;
    const address = lean ?? info?.peer;
    if (!address) return undefined;
    const link = this.#links.get(id);
    if (link?.address === address) return link;
    if (this.#unreachable.get(id) === address) return undefined;
    if (link) this.#fail(id, link);
    const options: LeanLinkOptions = {
      exec: this.#exec,
      engine: id,
      address,
      key: this.#key,
      routingId: this.o.routingId,
      maxMessageBytes: this.o.maxMessageBytes,
      dialMs: Math.max(1_000, this.o.heartbeatMs * 2),
      log: this.o.log,
      ready: () => this.o.log.debug({ engineId: id }, "direct link ready"),
      results: (msg, parts) => this.#results(msg, parts),
      failed: () => this.#fail(id, fresh),
    };
    const fresh: Link = lean ? new LeanLink(options) : new DirectLink(options);
    fresh.hold(this.#holding);
    this.#links.set(id, fresh);
    // Links that stop acknowledging are given up, as the controller gives up an engine.
    this.#timer ??= setInterval(() => this.#check(), this.o.heartbeatMs).unref();
    return fresh;
  }

  #results(msg: DirectResultsMsg, parts: Part[]): void {
    for (let i = 0; i < msg.results.length; i++) {
      const r = msg.results[i] as TaskResult;
      this.counts.results++;
      if (!this.accept(r)) continue;
      this.o.result(r, parts[i] ?? EMPTY_PART);
      const { stdout: _o, stderr: _e, ...header } = r;
      this.#done.push(header);
    }
    if (this.#done.length) this.#owe(false);
  }

  /** A batch of the submitter's: what goes straight to engines goes now, the controller's copy after this turn. */
  submit(tasks: ClientTask[], parts: Part[]): void {
    const b = this.route(tasks, parts);
    if (!b.direct) return this.o.submit(b.tasks, b.parts);
    this.#later.push(b);
    // Headers go after this turn, unless some went within the last `DIRECT_REPORT_MS`: then with
    // the next report. A stream of calls costs the controller (and each engine, which gets its
    // copy of the headers) one message per 20 ms instead of one per call; another client's
    // `rc.abort`, `rc.getResult` or `queueStatus` finds a direct task at most 20 ms after it was sent.
    this.#owe(performance.now() - this.#headersAt >= DIRECT_REPORT_MS);
  }

  /**
   * What the controller is owed, as `submit` messages: the headers of tasks sent straight to
   * engines, and the results that came straight back (`SubmitMsg.done`, without values).
   */
  flush(send: (tasks: ClientTask[], parts: Part[], done?: TaskResult[]) => void): void {
    this.#owing = false;
    if (this.#later.length) this.#headersAt = performance.now();
    let done = this.#done.length ? this.#done.splice(0) : undefined;
    // As few messages as the size limit allows (a batch split between paths carries bodies).
    let msg = { tasks: [] as ClientTask[], parts: [] as Part[], bytes: 0 };
    const out = () => {
      if (msg.tasks.length || done) send(msg.tasks, msg.parts, done);
      done = undefined;
      msg = { tasks: [], parts: [], bytes: 0 };
    };
    for (const b of this.#later.splice(0)) {
      const bytes = b.parts.reduce((n, p) => n + encodedSize(p), 0);
      if (msg.tasks.length && msg.bytes + bytes > this.o.maxMessageBytes / 2) out();
      msg.tasks.push(...b.tasks);
      msg.parts.push(...b.parts);
      msg.bytes += bytes;
    }
    out();
  }

  #owe(soon: boolean): void {
    if (this.#owing === "soon" || (!soon && this.#owing === "late")) return;
    this.#owing = soon ? "soon" : "late";
    // Task headers after this turn (another client's `rc.abort` or `rc.getResult` may name them);
    // results only a little later, in one message for several.
    if (soon) setImmediate(() => this.o.flush());
    else setTimeout(() => this.o.flush(), DIRECT_REPORT_MS);
  }

  #check(): void {
    for (const [id, link] of this.#links)
      if (link.state === "ready" && link.overdue(this.o.heartbeatMs * 6)) this.#fail(id, link);
  }

  /** A link failed: what it carries goes through the controller, in order, and so does what comes later. */
  #fail(id: number, link: Link): void {
    if (this.#links.get(id) !== link) return;
    this.#links.delete(id);
    this.#unreachable.set(id, link.address);
    this.counts.failed++;
    this.o.log.warn(
      { engineId: id, address: link.address, pending: link.pending.size },
      "no direct link to engine; its tasks go through the controller",
    );
    const tasks: ClientTask[] = [];
    const parts: Part[] = [];
    for (const { task, part } of link.pending.values()) {
      tasks.push({ ...task, rs: 1, dx: 1 });
      parts.push(part);
      this.#noteViaController(id, task.id);
    }
    void link.close();
    if (tasks.length) this.o.submit(tasks, parts);
  }
}
