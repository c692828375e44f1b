import * as zmq from "zeromq";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import {
  AuthenticationError, Channel, ClusterStartError, ClientClosedError, CompositeError, DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionError, decodeValue, HubLostError, MessageTooLargeError, NoEnginesError, encodedSize, PACKAGE_VERSION, PROTOCOL_VERSION,
  ProtocolError, VersionMismatchError, assertNever, curveClientOptions, endpoint, profilePaths, readConnectionFile, silentLogger, zmqContext,
  type ClientTask, type ClientToHub, type ConnectionInfo, type DropCounts, type EngineInfo, type FaultCounts, type HubRequest, type HubToClient, type LinkReport,
  type Incoming, type Logger, type Notification, type Part, type RunningTask, type TaskResult,
} from "@ptcluster/protocol";
import { DirectView, EngineView } from "./views/direct-view.js";
import { LoadBalancedView } from "./views/load-balanced-view.js";
import { validateConnectOptions, type ConnectOptions } from "./options.js";
import { AsyncResult, pendingMetadata, recordResult } from "./results/async-result.js";
import { failureToError } from "./results/remote-errors.js";
import { WorkMap, closeAtExit, forgetAtExit } from "./keep-alive.js";

/** @internal Receives the results of one submitted task. */
export interface TaskSink {
  onResult(result: TaskResult, part: Part): void;
  onFailure(err: Error): void;
}

export type ClientState = "connecting" | "connected" | "closed" | "hub-lost";

/** Something whose tasks can be cancelled: an `AsyncResult` or a map's result. */
export interface Abortable {
  abort(): void;
}

/** Options of `rc.addEngines()`: the launcher and its settings. */
export interface AddEnginesOptions {
  /** `local`, `ssh`, `mpi` or `slurm` (default: the launcher the cluster started with). */
  launcher?: string;
  /** ms to wait for the new engines to register (default 60 s). */
  timeout?: number;
  /** Launcher settings, as `ptcluster start` takes them (`hosts: "b:4,c:4"` for ssh, …). */
  [option: string]: unknown;
}

/** A failed request's error as its class: a start failure, a bad option, or else a protocol error. */
function replyError(e: { code: string; message: string } | undefined): Error {
  const message = e?.message ?? "request failed";
  if (e?.code === "ERR_PTC_START") return new ClusterStartError(message);
  if (e?.code === "ERR_PTC_INVALID_OPTION") return new InvalidOptionError(message);
  return new ProtocolError(message, { code: e?.code ?? "ERR_PTC_PROTOCOL" });
}

/** What `rc.queueStatus()` reports. */
export interface QueueStatus {
  engines: Record<number, { queued: number; running: number; completed: number }>;
  /** Load-balanced tasks waiting for a free engine. */
  unassigned: number;
}


export type { DropCounts, FaultCounts, LinkReport, RunningTask } from "@ptcluster/protocol";

/** What `rc.status()` reports. */
export interface ClusterStatus {
  pid: number;
  profile: string;
  clusterId: string;
  /**
   * Each engine, with its own view of its link (from its last heartbeat), the tasks running there
   * (as of its last heartbeat, a heartbeat period behind at most) and how many more wait there.
   */
  engines: Array<EngineInfo & { link?: LinkReport; current: RunningTask[]; queued: number }>;
  /** The controller's clock when it answered (ms since the epoch): running tasks' `since` counts from it. */
  time: number;
  clients: number;
  tasksInFlight: number;
  unassigned: number;
  /** Messages each controller socket refused, by reason. */
  dropped: { client: DropCounts; engine: DropCounts };
  /** Messages each controller socket received, sent, and sent again after a missing acknowledgement. */
  messages: { client: MessageCounts; engine: MessageCounts };
  /** Only while fault injection (`PTCLUSTER_TEST_FAULTS`) is on: what it did to the controller's sends. */
  faults?: { client: FaultCounts; engine: FaultCounts };
  /** The profile's log directory (engines' and launchers' logs) and the controller's own log file (on the controller's host). */
  log: { dir: string; file?: string };
  /** The controller process's memory (bytes, as `process.memoryUsage()`). */
  memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number };
  /**
   * What the controller keeps on behalf of clients and engines: tasks in flight, results kept for
   * clients that went away (and their bytes), function sources, peers with delivery state. All of
   * it goes when they do, except `sessions`: every sender session seen, remembered (up to 65,536
   * per socket) so that their old messages cannot be replayed.
   */
  retained: { tasks: number; results: number; resultBytes: number; functions: number; clientLinks: number; engineLinks: number; sessions: number };
}

export interface MessageCounts { received: number; sent: number; retransmitted: number }

export interface ClientEvents {
  engine_up: [EngineInfo];
  engine_down: [{ id: number; reason: string }];
  /** An engine's namespace was reset (its executor replaced after a timeout or a forced cancel). */
  engine_reset: [{ id: number; reason: string }];
  hub_lost: [HubLostError];
  close: [];
}

/**
 * A connection to one cluster's controller. Obtain one with {@link connect}.
 *
 * ```ts
 * const rc = await connect();
 * rc.ids;                                         // [0, 1, 2, 3]
 * await rc.view().applySync(() => "Hello, World");
 * await rc.close();
 * ```
 */
export class Client extends EventEmitter<ClientEvents> {
  state: ClientState = "connecting";
  /** The connection file this client used. */
  readonly connection: ConnectionInfo;
  private readonly engines = new Map<number, EngineInfo>();
  private channel!: Channel<HubToClient, ClientToHub>;
  private notify!: Channel<Notification, never>;
  // Pending work, and only that, keeps the process alive: see `updateHold`.
  private readonly sinks = new WorkMap<number, TaskSink>(() => this.updateHold());
  private readonly requests = new WorkMap<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>(() => this.updateHold());
  /** `waitForEngines` calls waiting. */
  private waiting = 0;
  /** Whether the channels hold the process (they do from the start, until connected). */
  private holding = true;
  private nextTaskId = 1;
  private nextRid = 1;
  private readonly sentFns = new Set<string>();
  private batch: { tasks: ClientTask[]; parts: Part[]; bytes: number } | undefined;
  private liveness: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  /** When the liveness check last ran (a late run means this event loop was blocked). */
  private lastLivenessCheck = Date.now();
  private hbMs = 500;
  private refreshing = false;
  private readonly log: Logger;

  /** This client's id, the first half of its tasks' `msgIds`. */
  readonly id = randomBytes(16).toString("hex");

  /** @internal use {@link connect} */
  constructor(connection: ConnectionInfo, logger?: Logger) {
    super();
    this.connection = connection;
    this.log = logger ?? silentLogger();
  }

  /** @internal */
  async open(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const key = Buffer.from(this.connection.key, "hex");
    const routingId = this.id;
    const curve = curveClientOptions(this.connection.curve);
    const dealer = new zmq.Dealer({ routingId, linger: 100, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000, ...curve, context: zmqContext() });
    // The socket's event observer must exist before the handshake, or a refusal goes unseen.
    const events = dealer.events;
    dealer.connect(endpoint(this.connection.host, this.connection.port));
    const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 100_000, ...curve, context: zmqContext() });
    sub.connect(endpoint(this.connection.host, this.connection.notifyPort ?? 0));
    sub.subscribe();
    const where = `${this.connection.host}:${this.connection.port}`;
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const connected = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.channel = new Channel<HubToClient, ClientToHub>({
      socket: dealer, clusterKey: key, sendLabel: "c2h", recvLabel: "h2c", selfId: Buffer.from(routingId), logger: this.log,
      onAuthFailed: () => settle.reject(new AuthenticationError(
        `The controller at ${where} rejected this client's signatures: the key in the connection file does not match the running cluster (profile \`${this.connection.profile}\`). ` +
          "The cluster may have been restarted; reconnect with its current connection file.",
      )),
      onMessage: (m) => {
        if (m.header.type === "connect_reply" && this.state === "connecting") {
          if (!m.header.ok) {
            const e = m.header.error;
            settle.reject(e?.code === "ERR_PTC_VERSION" ? new VersionMismatchError(e.message, PROTOCOL_VERSION, m.header.v) : new ProtocolError(e?.message ?? "connection refused"));
            return;
          }
          this.hbMs = m.header.heartbeatMs;
          for (const e of m.header.engines) this.engines.set(e.id, e);
          settle.resolve();
          return;
        }
        this.onMessage(m);
      },
    }).start();
    void watchEvents(events, (type) => {
      // Security mechanisms that do not match (a CURVE controller, a plain client file) fail the handshake.
      if (type === "handshake:error:protocol") {
        settle.reject(new AuthenticationError(
          `The handshake with the controller at ${where} failed: its security settings differ from this connection file's (is the cluster running with --curve?). ` +
            "Connect with the cluster's current client connection file.",
        ));
      } else if (type === "handshake:error:auth" && this.connection.curve) {
        // The controller's ZAP handler refused our public key: say so now rather than time out.
        settle.reject(new AuthenticationError(
          `The controller at ${where} refused this client's CURVE public key (it is not in the cluster's allow-list). ` +
            "Use the cluster's current client connection file, or add your public key to security/allowed_keys and restart the cluster.",
        ));
      }
    });
    this.notify = new Channel<Notification, never>({ socket: sub, clusterKey: key, recvLabel: "pub", reliable: false, logger: this.log, onMessage: (m) => this.onNotification(m.header) }).start();
    this.channel.send({ type: "connect", v: PROTOCOL_VERSION, pkg: PACKAGE_VERSION, pid: process.pid, host: hostname() });
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => settle.reject(new ClientClosedError("Connecting was aborted."));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([
        connected,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new HubLostError(
            `No answer from the controller at ${where} within ${timeoutMs} ms (profile \`${this.connection.profile}\`). ` +
              "It may have exited (check `ptcluster list`, or restart it with `ptcluster start`), or it runs with --curve and this connection file has no CURVE keys.",
          )), timeoutMs);
        }),
      ]);
    } catch (err) {
      await this.teardown();
      this.state = "closed";
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
    this.state = "connected";
    // The observer's own receive loop would hold the process for ever; it was only for the handshake.
    events.close();
    this.lastHeard = Date.now();
    this.lastLivenessCheck = Date.now();
    // Pings go on while the process lives, so the controller never takes an idle client for dead.
    this.liveness = setInterval(() => this.checkLiveness(), Math.max(250, this.hbMs));
    this.liveness.unref();
    closeAtExit(this);
    this.updateHold();
  }

  /**
   * The channels hold the process while work is pending (tasks, requests, waits: a receive in
   * flight, so results arrive at once), and not otherwise (they poll, so notifications,
   * heartbeats and acknowledgements still flow while something else keeps the process alive).
   */
  private updateHold(): void {
    const busy = this.state === "connecting" || this.sinks.size + this.requests.size + this.waiting > 0;
    if (busy === this.holding) return;
    this.holding = busy;
    this.channel?.hold(busy);
    this.notify?.hold(busy);
  }

  /** Engine ids, sorted, kept current as engines come and go. */
  get ids(): number[] {
    return [...this.engines.keys()].sort((a, b) => a - b);
  }

  /** What the controller said about each engine when it registered. */
  engineInfo(id: number): EngineInfo | undefined {
    return this.engines.get(id);
  }

  /**
   * A DirectView on `targets` (default: every engine, re-evaluated at each call, so engines that
   * join later are included).
   */
  view(targets?: readonly number[]): DirectView {
    return new DirectView(this, targets ? [...targets] : undefined, {});
  }

  /** A view on one engine: results are single values rather than one per engine. */
  engine(id: number): EngineView {
    return new EngineView(this, id, {});
  }

  /** Waits until at least `n` engines are registered (default: those already known, at least 1). */
  async waitForEngines(n = Math.max(1, this.engines.size), options: { timeout?: number } = {}): Promise<number[]> {
    if (this.engines.size >= n) return this.ids;
    const timeoutMs = options.timeout ?? 30_000;
    this.waiting++;
    this.updateHold();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.engines.size >= n) {
          cleanup();
          resolve(this.ids);
        }
      };
      const fail = (err: Error) => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => fail(new NoEnginesError(`Only ${this.engines.size} of ${n} engines registered within ${timeoutMs} ms. Check the engines' logs under ${profilePaths(this.connection.profile, this.connection.clusterId).logDir}.`)), timeoutMs);
      const onLost = (e: HubLostError) => fail(e);
      const cleanup = () => {
        this.waiting--;
        this.updateHold();
        clearTimeout(timer);
        this.off("engine_up", check);
        this.off("hub_lost", onLost);
      };
      this.on("engine_up", check);
      this.on("hub_lost", onLost);
    });
  }

  /** Waits for every result to finish (successfully or not); true if all did within `timeout` ms. */
  async wait(results: Iterable<AsyncResult<unknown> | PromiseLike<unknown>>, options: { timeout?: number } = {}): Promise<boolean> {
    const all = Promise.allSettled([...results]).then(() => true);
    if (options.timeout === undefined) return all;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), options.timeout)));
    try {
      return await Promise.race([all, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Per-engine counts of queued, running and completed tasks, and load-balanced tasks not yet placed. */
  queueStatus(): Promise<QueueStatus> {
    return this.request({ what: "queue_status" }) as Promise<QueueStatus>;
  }

  /**
   * Cancels work: the given results or task ids (`ar.taskIds`), or every pending task of this
   * client. Queued tasks are dropped; running ones see `engine.signal` abort, and are stopped by
   * force after a grace period.
   * Each cancelled result rejects with `TaskCancelledError`.
   */
  abort(results?: Abortable | number | Iterable<Abortable | number>): void {
    if (results === undefined) {
      this.cancel([...this.sinks.keys()]);
      return;
    }
    const list = typeof results === "number" || typeof (results as Abortable).abort === "function"
      ? [results as Abortable | number]
      : [...(results as Iterable<Abortable | number>)];
    const ids = list.filter((r): r is number => typeof r === "number");
    for (const r of list) if (typeof r !== "number") r.abort();
    this.cancel(ids.filter((id) => this.sinks.has(id)));
  }

  /**
   * The result of a task another client submitted and then went away from (`ar.msgIds`), while the
   * controller keeps it (`--result-ttl`, default 10 minutes). Resolves to the value, or to one value
   * per engine for a task sent to several; rejects with the task's error, or `UnknownTaskError`.
   */
  getResult(msgId: string): AsyncResult<unknown> {
    this.assertOpen();
    const m = typeof msgId === "string" ? /^([0-9a-f]{32}):(\d+)$/.exec(msgId) : null;
    if (!m) throw new InvalidOptionError(`Expected a task id like "<client id>:<number>" (from \`ar.msgIds\`), got ${JSON.stringify(msgId)}`);
    const meta = pendingMetadata(-1);
    const ids: number[] = [];
    return new AsyncResult<unknown>((resolve, reject) => {
      const id = this.nextTaskId++;
      ids.push(id);
      const got: Array<{ engine: number; value: unknown; error: Error | undefined }> = [];
      let total: number | undefined;
      this.sinks.set(id, {
        onResult: (r, part) => {
          total ??= r.total ?? 1;
          recordResult(meta, r);
          let value: unknown;
          let error: Error | undefined;
          if (r.ok) {
            try {
              value = decodeValue(part.body, part.frames);
            } catch (err) {
              error = err as Error;
            }
          } else error = failureToError(r, part);
          got.push({ engine: r.engine, value, error });
          if (got.length < total) return;
          this.release(id);
          got.sort((a, b) => a.engine - b.engine);
          const failed = got.find((g) => g.error);
          if (failed?.error) reject(got.length === 1 ? failed.error : new CompositeError(got.flatMap((g) => (g.error ? [g.error] : [])), got.map((g) => g.error ?? g.value)));
          else resolve(got.length === 1 ? got[0]?.value : got.map((g) => g.value));
        },
        onFailure: (err) => reject(err),
      });
      this.channel.send({ type: "adopt", items: [{ from: m[1] as string, id: Number(m[2]), as: id }] });
    }, [meta], () => this.cancel(ids), ids, this.id);
  }

  /** A load-balanced view: each task runs on whichever engine (of `targets`, default all) is free. */
  loadBalancedView(targets?: readonly number[]): LoadBalancedView {
    return new LoadBalancedView(this, targets ? [...targets] : undefined, {});
  }

  /** @internal Cancels tasks by id (client-local). */
  cancel(ids: number[]): void {
    if (ids.length === 0 || this.state !== "connected") return;
    this.flush();
    this.channel.send({ type: "cancel", ids, reason: "cancel" });
  }

  /**
   * The controller's view of the cluster: engines (id, pid, host, state, tasks done), clients,
   * tasks in flight, how many messages it refused on each socket, its memory and what it keeps.
   * With `gc: true` the controller runs a full garbage collection first (a pause of a few
   * milliseconds per 100 MB of heap), so `memory.heapUsed` is what is live: for leak checks.
   */
  status(options: { gc?: boolean } = {}): Promise<ClusterStatus> {
    return this.request({ what: "status", ...(options.gc ? { gc: true } : {}) }) as Promise<ClusterStatus>;
  }

  /**
   * Starts `n` more engines with the launchers of the controller's `ptcluster start` process, and
   * resolves with their ids once they registered (`ptcluster engines` is this from the shell).
   * `launcher` defaults to the one the cluster started with; other options are that launcher's
   * (`hosts` for ssh, `partition`/`time`/`account` for slurm, …). The new engines are supervised
   * and stopped with the cluster like the first ones.
   */
  async addEngines(n: number, options: AddEnginesOptions = {}): Promise<{ ids: number[] }> {
    const { launcher = "", timeout = 60_000, ...rest } = options;
    if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError(`Expected \`n\` to be a positive integer, got \`${String(n)}\``);
    return (await this.request({ what: "launch", n, launcher, options: { ...rest, timeout } }, timeout + 5_000)) as { ids: number[] };
  }

  /**
   * This client's link to the controller: messages sent, received, sent again for want of an
   * acknowledgement, and refused (by reason); `faults` while fault injection is on.
   */
  connectionStats(): LinkReport {
    const { sent, received, retransmitted, dropped, faults } = this.channel.stats;
    return { sent, received, retransmitted, dropped: { ...dropped }, ...(faults ? { faults: { ...faults } } : {}) };
  }

  /** Stops the whole cluster (engines and controller), then closes this client. */
  async shutdown(): Promise<void> {
    this.assertOpen();
    await this.request({ what: "shutdown" });
    await this.teardown(new HubLostError("The cluster was shut down by this client."));
    this.state = "closed";
    this.emit("close");
  }

  /** Closes the connection; pending results reject with `ClientClosedError`. The cluster keeps running. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "connected") this.channel.send({ type: "bye" });
    await this.teardown(new ClientClosedError());
    this.state = "closed";
    this.emit("close");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- internals used by views ----------------------------------------------------------------

  /** @internal */
  assertOpen(): void {
    if (this.state === "closed") throw new ClientClosedError("This client is closed; connect again with `connect()`.");
    if (this.state === "hub-lost") throw new HubLostError("The controller is gone; restart the cluster and connect again.");
  }

  /** @internal Queues a task; tasks queued in the same tick travel in one message. */
  submit(task: Omit<ClientTask, "id" | "src">, part: Part, sink: TaskSink, src?: string): number {
    this.assertOpen();
    const bytes = encodedSize(part) + (src?.length ?? 0);
    if (bytes > this.maxMessageBytes) throw new MessageTooLargeError(`This task's data (${task.op})`, bytes, this.maxMessageBytes);
    const id = this.nextTaskId++;
    const t: ClientTask = { ...task, id };
    if (t.fn && src !== undefined && !this.sentFns.has(t.fn)) {
      this.sentFns.add(t.fn);
      t.src = src;
    }
    this.sinks.set(id, sink);
    // A batch stays within the message limit: a task that would overflow it starts the next one.
    if (this.batch && this.batch.bytes + bytes > this.maxMessageBytes) this.flush();
    if (!this.batch) {
      this.batch = { tasks: [], parts: [], bytes: 0 };
      queueMicrotask(() => this.flush());
    }
    this.batch.tasks.push(t);
    this.batch.parts.push(part);
    this.batch.bytes += bytes;
    return id;
  }

  /** @internal Throws `MessageTooLargeError` if this part could never be sent. */
  checkSize(part: Part, what: string): void {
    const bytes = encodedSize(part);
    if (bytes > this.maxMessageBytes) throw new MessageTooLargeError(what, bytes, this.maxMessageBytes);
  }

  /** Largest message this cluster accepts (bytes). */
  get maxMessageBytes(): number {
    return this.connection.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** @internal Sends what is batched now (before a cancel, so the controller knows the tasks). */
  flush(): void {
    const b = this.batch;
    this.batch = undefined;
    if (!b || this.state !== "connected") return;
    this.channel.send({ type: "submit", tasks: b.tasks, pf: b.parts.map((p) => p.frames.length), t: Date.now() }, b.parts);
  }

  /** @internal the sink is done: forget it */
  release(id: number): void {
    this.sinks.delete(id);
  }

  private request(req: HubRequest, timeoutMs = 10_000): Promise<unknown> {
    this.assertOpen();
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(rid);
        reject(new HubLostError(`The controller did not answer a \`${req.what}\` request within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.requests.set(rid, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.channel.send({ type: "request", rid, req });
    });
  }

  private onMessage({ header, parts }: Incoming<HubToClient>): void {
    this.lastHeard = Date.now();
    switch (header.type) {
      case "results":
        for (let i = 0; i < header.results.length; i++) {
          const r = header.results[i] as TaskResult;
          this.sinks.get(r.id)?.onResult(r, parts[i] ?? { body: Buffer.alloc(0), frames: [] });
        }
        break;
      case "reply": {
        const pending = this.requests.get(header.rid);
        this.requests.delete(header.rid);
        if (!pending) break;
        if (header.ok) pending.resolve(header.data);
        else pending.reject(replyError(header.error));
        break;
      }
      case "connect_reply":
        break;
      default:
        assertNever(header);
    }
  }

  private onNotification(n: Notification): void {
    this.lastHeard = Date.now();
    switch (n.type) {
      case "engine_up":
        this.engines.set(n.engine.id, n.engine);
        this.emit("engine_up", n.engine);
        break;
      case "engine_down":
        if (this.engines.delete(n.id)) this.emit("engine_down", { id: n.id, reason: n.reason });
        break;
      case "tick":
        // Notifications sent before our subscription took effect are lost: catch up from the controller.
        if (n.engines !== this.engines.size) void this.refreshEngines();
        break;
      case "shutdown_notice":
        this.hubLost(new HubLostError(`The controller shut down (${n.reason}); pending work was not completed.`));
        break;
      case "engine_reset":
        this.emit("engine_reset", { id: n.id, reason: n.reason });
        break;
      default:
        assertNever(n, "notification");
    }
  }

  private async refreshEngines(): Promise<void> {
    if (this.refreshing || this.state !== "connected") return;
    this.refreshing = true;
    try {
      const s = await this.status();
      const seen = new Set<number>();
      for (const e of s.engines) {
        seen.add(e.id);
        if (!this.engines.has(e.id)) {
          this.engines.set(e.id, e);
          this.emit("engine_up", e);
        }
      }
      for (const id of [...this.engines.keys()]) {
        if (!seen.has(id)) {
          this.engines.delete(id);
          this.emit("engine_down", { id, reason: "no longer registered" });
        }
      }
    } catch {
      /* the liveness check reports a lost controller */
    } finally {
      this.refreshing = false;
    }
  }

  private checkLiveness(): void {
    if (this.state !== "connected") return;
    this.channel.send({ type: "ping" });
    // After this client's own event loop was blocked (a long synchronous loop, a busy machine),
    // timers run before the socket is read: what the controller sent meanwhile is still unread.
    // Judge at the next check, once it has been.
    const now = Date.now();
    const stalled = now - this.lastLivenessCheck > 2 * Math.max(250, this.hbMs);
    this.lastLivenessCheck = now;
    if (stalled) return;
    const limit = Math.max(3_000, this.hbMs * 8);
    const where = `${this.connection.host}:${this.connection.port}`;
    if (Date.now() - this.lastHeard > limit) {
      this.hubLost(new HubLostError(`The controller at ${where} has been silent for ${limit} ms; it is presumed dead. Pending work is lost; restart the cluster.`));
    } else if (this.channel.overdue(2 * limit).length > 0) {
      // Twice the silence limit: a message lost several times over is resent within it.
      this.hubLost(new HubLostError(`The controller at ${where} has not acknowledged this client's messages for ${2 * limit} ms (it is stuck, or the link to it is cut one way); it is presumed lost. Pending work is lost; reconnect or restart the cluster.`));
    }
  }

  private hubLost(err: HubLostError): void {
    if (this.state !== "connected") return;
    this.state = "hub-lost";
    this.log.error({ err }, "controller lost");
    void this.teardown(err);
    this.emit("hub_lost", err);
  }

  private async teardown(err?: Error): Promise<void> {
    clearInterval(this.liveness);
    forgetAtExit(this);
    const failure = err ?? new ClientClosedError();
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    for (const s of sinks) s.onFailure(failure);
    const reqs = [...this.requests.values()];
    this.requests.clear();
    for (const r of reqs) r.reject(failure);
    await Promise.all([this.channel?.close(100), this.notify?.close(0)]);
  }
}

/**
 * Reads a socket's events until its observer is closed. Not the observer's emitter mode (`on`):
 * its loop cannot be ended without an unhandled rejection, and while it runs it holds the process.
 */
async function watchEvents(events: zmq.Observer, on: (type: string) => void): Promise<void> {
  try {
    for await (const event of events) on(event.type);
  } catch {
    // The observer (or its socket) was closed while a read was pending.
  }
}

/**
 * Connects to a running cluster: the default profile, or `{ profile }`, `{ clusterId }`, or an
 * explicit connection `{ file }`.
 *
 * ```ts
 * const rc = await connect({ profile: "default" });
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const o = validateConnectOptions(options);
  const paths = profilePaths(o.profile, o.clusterId);
  const file = o.file ?? paths.clientFile;
  const info = readConnectionFile(file, "client", o.file ? undefined : o.profile);
  const client = new Client(info, o.logger);
  await client.open(o.timeout, o.signal);
  return client;
}
