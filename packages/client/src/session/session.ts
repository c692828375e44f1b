import { randomBytes } from "node:crypto";
import {
  EMPTY_PART,
  ClientClosedError,
  ClientDroppedError,
  DEFAULT_MAX_MESSAGE_BYTES,
  HubLostError,
  assertNever,
  type ClientTask,
  type ClientToHub,
  type ConnectionInfo,
  type EngineInfo,
  type HubRequest,
  type HubToClient,
  type Incoming,
  type LinkReport,
  type Logger,
  type Notification,
  type Part,
  type PipeOnError,
  type PipeStage,
  type TaskResult,
  PendingSharedCalls,
} from "@ptcluster/protocol";
import { clientSharedNamespace } from "./shared-namespace.js";
import { WorkMap, closeAtExit, forgetAtExit, type Closable } from "../keep-alive.js";
import type { ClientEmitter } from "./client-events.js";
import { Liveness, hubLostError, hubStoppedError } from "./liveness.js";
import { Requests } from "./requests.js";
import { Roster } from "./roster.js";
import { connectMessage, linkReport, openLinks, type Links } from "./sockets.js";
import { Submitter } from "./submitter.js";
import { DirectLinks } from "./direct-links.js";
import { awaitWelcome } from "./await-welcome.js";
import { PipeTable } from "./pipes.js";
import { ClientShm } from "./shm-path.js";
import type { NewTask, TaskSink, ViewPort } from "./view-port.js";
import type { PipeHandle, PipePort, PipeSink } from "../pipeline/pipe-port.js";

export type ClientState = "connecting" | "connected" | "closed" | "hub-lost";

/**
 * One connection to the controller, behind the public `Client`: it owns the channels, routes
 * results to the sinks of pending tasks and replies to pending requests, keeps the engine roster,
 * watches the controller's liveness, and decides whether the process is held. Views reach it only
 * through its {@link ViewPort}.
 */
export class Session implements ViewPort, PipePort {
  state: ClientState = "connecting";
  /** This client's id, the first half of its tasks' `msgIds`. */
  readonly id = randomBytes(16).toString("hex");
  readonly roster: Roster;
  readonly #connection: ConnectionInfo;
  readonly #log: Logger;
  readonly #events: ClientEmitter;
  readonly #owner: Closable;
  // Pending work, and only that, keeps the process alive: see `#updateHold`.
  readonly #sinks = new WorkMap<number, TaskSink>(() => this.#updateHold());
  readonly #requests = new Requests(() => this.#updateHold());
  // A blocking call on shared state (a queue `get`) holds the process as a pending task does.
  readonly #sharedCalls = new PendingSharedCalls(
    (msg, parts) => this.#send(msg, parts.length > 0 ? [...parts] : undefined),
    () => this.#updateHold(),
  );
  /** Named objects held by the controller (`rc.shared`). */
  readonly shared = clientSharedNamespace(this.#sharedCalls, () => this.assertOpen());
  readonly #submitter: Submitter;
  readonly #shm: ClientShm;
  // Open pipelines (`rc.pipeline`): those with items out at the controller hold the process.
  readonly #pipes: PipeTable;
  #links: Links | undefined;
  #direct: DirectLinks | undefined;
  #liveness: Liveness | undefined;
  /** A `connect` went again (the controller had taken this client for gone), not answered yet. */
  #rejoining = false;
  /** `waitForEngines` calls waiting. */
  #waiting = 0;
  /** Whether the channels hold the process (they do from the start, until connected). */
  #holding = true;

  /** `owner` is the `Client`: it emits the session's events and is closed when the process runs out of work. */
  constructor(connection: ConnectionInfo, log: Logger, owner: ClientEmitter & Closable) {
    this.#connection = connection;
    this.#log = log;
    this.#events = owner;
    this.#owner = owner;
    this.roster = new Roster(owner);
    this.#shm = new ClientShm(connection, this.id);
    this.#submitter = new Submitter({
      maxMessageBytes: this.maxMessageBytes,
      // DirectView tasks go straight to the engines this client reaches (`direct-links.ts`).
      send: (tasks, parts) => (this.#direct ? this.#direct.submit(tasks, parts) : this.#submit(tasks, parts)),
    });
    this.#pipes = new PipeTable(
      (msg, parts) => this.#send(msg, parts),
      (hash, src) => this.#submitter.firstUse(hash, src),
      () => this.#updateHold(),
    );
  }

  /** Opens the channels and waits for the controller's welcome. */
  async open(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    let heartbeatMs = 500;
    const { links, handshake } = openLinks(this.#connection, this.id, this.#log, {
      welcome: (reply) => {
        heartbeatMs = reply.heartbeatMs;
        this.roster.seed(reply.engines);
      },
      message: (m) => this.#onMessage(m),
      notification: (n) => this.#onNotification(n),
    });
    this.#links = links;
    try {
      await awaitWelcome(handshake, this.#connection, timeoutMs, signal);
    } catch (err) {
      await this.#teardown();
      this.state = "closed";
      throw err;
    }
    this.state = "connected";
    this.#direct = new DirectLinks({
      connection: this.#connection,
      routingId: this.id,
      maxMessageBytes: this.maxMessageBytes,
      heartbeatMs,
      engineInfo: (id) => this.roster.info(id),
      result: (r, part) => this.#result(r, part),
      submit: (tasks, parts) => this.#submit(tasks, parts),
      flush: () => this.#send(),
      log: this.#log,
    });
    this.#direct.hold(this.#holding);
    // Pings go on while the process lives, so the controller never takes an idle client for dead.
    this.#liveness = new Liveness({
      heartbeatMs,
      ping: () => this.#send({ type: "ping" }),
      overdue: (ms) => links.channel.overdue(ms).length > 0,
      lost: (v) => this.#hubLost(hubLostError(v, `${this.#connection.host}:${this.#connection.port}`)),
    });
    this.#liveness.start();
    closeAtExit(this.#owner);
    this.#updateHold();
  }

  /**
   * The channels hold the process while work is pending (tasks, requests, waits: a receive in
   * flight, so results arrive at once), and not otherwise (they poll, so notifications,
   * heartbeats and acknowledgements still flow while something else keeps the process alive).
   */
  #updateHold(): void {
    const busy =
      this.state === "connecting" ||
      this.#sinks.size + this.#requests.size + this.#sharedCalls.size + this.#pipes.busy + this.#waiting > 0;
    if (busy === this.#holding) return;
    this.#holding = busy;
    this.#links?.channel.hold(busy);
    this.#links?.notify.hold(busy);
    this.#direct?.hold(busy);
  }

  /** Holds the process while something waits (`waitForEngines`); call the returned function when done. */
  holdWhileWaiting(): () => void {
    this.#waiting++;
    this.#updateHold();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#waiting--;
      this.#updateHold();
    };
  }

  get maxMessageBytes(): number {
    return this.#connection.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  // ---- the view port -------------------------------------------------------------------------
  get ids(): number[] {
    return this.roster.ids;
  }

  engineInfo(id: number): EngineInfo | undefined {
    return this.roster.info(id);
  }

  assertOpen(): void {
    if (this.state === "closed") throw new ClientClosedError("This client is closed; connect again with `connect()`.");
    if (this.state === "hub-lost")
      throw new HubLostError("The controller is gone; restart the cluster and connect again.");
  }

  checkSize(part: Part, what: string): void {
    this.#submitter.checkSize(part, what);
  }

  submit(task: NewTask, part: Part, sink: TaskSink, src?: string): number {
    this.assertOpen();
    if (task.to.length > 0 && task.to.every((e) => this.roster.info(e))) task = { ...task, k: 1 };
    let id: number;
    if (this.#shm.on) {
      // The message limit holds for data that goes through shared memory too, as for results.
      this.#submitter.checkSize(part, `This task's data (${task.op})`);
      const { part: sent, shared } = this.#shm.out(task, part, this.roster);
      id = this.#submitter.add({ ...task, shm: true }, sent, src);
      if (shared) this.#shm.track(id, shared);
    } else id = this.#submitter.add(task, part, src);
    this.#sinks.set(id, sink);
    return id;
  }

  cancel(ids: number[]): void {
    if (ids.length === 0 || this.state !== "connected") return;
    this.#submitter.flush();
    this.#send({ type: "cancel", ids, reason: "cancel" });
  }

  release(id: number): void {
    this.#sinks.delete(id);
    this.#direct?.release(id);
  }

  openPipe(stages: PipeStage[], scopes: Part[], onError: PipeOnError, sink: PipeSink): PipeHandle {
    this.assertOpen();
    // Tasks batched this tick go first: one of them may carry a source this pipeline then omits.
    this.#submitter.flush();
    return this.#pipes.open(stages, scopes, onError, sink);
  }

  // ---- for the client --------------------------------------------------------------------------
  /** Cancels this client's running pipelines (`rc.abort()` with no argument). */
  abortPipelines(reason: string): void {
    this.#pipes.abortAll(reason);
  }

  /** Ids of the tasks still pending (`rc.abort()` with no argument cancels them all). */
  pendingIds(): number[] {
    return [...this.#sinks.keys()];
  }

  isPending(id: number): boolean {
    return this.#sinks.has(id);
  }

  /** Asks the controller for another client's task result (`from`:`n`), delivered to `sink` under a new id. */
  adopt(from: string, n: number, sink: TaskSink): number {
    this.assertOpen();
    const id = this.#submitter.newId();
    this.#sinks.set(id, sink);
    this.#send({ type: "adopt", items: [{ from, id: n, as: id }] });
    return id;
  }

  request(req: HubRequest, timeoutMs?: number): Promise<unknown> {
    this.assertOpen();
    return this.#requests.request(req, (rid, r) => this.#send({ type: "request", rid, req: r }), timeoutMs);
  }

  stats(): LinkReport {
    return linkReport(this.#links as Links, this.#direct?.report());
  }

  /** Says goodbye (if connected) and closes; pending work fails with `err`. */
  async close(err: Error, bye: boolean): Promise<void> {
    if (bye && this.state === "connected") this.#send({ type: "bye" });
    await this.#teardown(err);
    this.state = "closed";
  }

  // ---- what comes in -------------------------------------------------------------------------
  #submit(tasks: ClientTask[], parts: Part[], done?: TaskResult[]): void {
    const pf = parts.map((p) => p.frames.length);
    this.#send({ type: "submit", tasks, pf, t: Date.now(), ...(done ? { done } : {}) }, parts);
  }

  #send(msg?: ClientToHub, parts?: Part[]): void {
    // Nothing goes out once the session is closed or lost (a batch flushed late is dropped).
    if (this.state !== "connected") return;
    // What the direct path owes the controller goes first (it names tasks a cancel may name).
    this.#direct?.flush((t, p, done) => this.#submit(t, p, done));
    if (msg) this.#links?.channel.send(msg, parts);
  }

  /** A result, by either path, to its sink: its shared-memory files read and checked first. */
  #result(r: TaskResult, received: Part): void {
    const sink = this.#sinks.get(r.id);
    let part: Part;
    try {
      part = this.#shm.receive(r.id, received);
    } catch (err) {
      sink?.onFailure(err as Error);
      return;
    }
    sink?.onResult(r, part);
  }

  #onMessage({ header, parts }: Incoming<HubToClient>): void {
    this.#liveness?.heard();
    switch (header.type) {
      case "results":
        for (let i = 0; i < header.results.length; i++) {
          const r = header.results[i] as TaskResult;
          if (this.#direct?.accept(r) !== false) this.#result(r, parts[i] ?? EMPTY_PART);
        }
        break;
      case "reply":
        this.#requests.settle(header.rid, header.ok, header.data, header.error);
        break;
      case "shared_reply":
        this.#sharedCalls.settle(header, parts);
        break;
      case "connect_reply":
        this.#rejoining = false;
        break;
      case "rejoin":
        this.#rejoin(header.reason);
        break;
      case "pipe_out":
        this.#pipes.out(header, parts);
        break;
      case "pipe_failed":
        this.#pipes.failed(header, parts);
        break;
      case "ping": // the controller's probe: acknowledged by the channel
        break;
      default:
        assertNever(header);
    }
  }

  #onNotification(n: Notification): void {
    this.#liveness?.heard();
    switch (n.type) {
      case "engine_up":
        this.roster.up(n.engine);
        break;
      case "engine_down":
        this.roster.down(n.id, n.reason);
        this.#direct?.engineDown(n.id);
        break;
      case "tick":
        // Notifications sent before our subscription took effect are lost: catch up from the controller.
        if (this.state === "connected")
          this.roster.tick(n.engines, () => this.request({ what: "status" }) as Promise<{ engines: EngineInfo[] }>);
        break;
      case "shutdown_notice":
        this.#hubLost(hubStoppedError(n.reason));
        break;
      case "engine_reset":
        this.#events.emit("engine_reset", { id: n.id, reason: n.reason });
        break;
      default:
        assertNever(n, "notification");
    }
  }

  #hubLost(err: HubLostError): void {
    if (this.state !== "connected") return;
    this.state = "hub-lost";
    this.#log.error({ err }, "controller lost");
    void this.#teardown(err);
    this.#events.emit("hub_lost", err);
  }

  /**
   * The controller took this client for gone (its event loop held past `--client-timeout`) and
   * cancelled its work: what is pending fails, and it connects again (what it sends next follows).
   */
  #rejoin(reason: string | undefined): void {
    // Notices the controller sent before it had this client's `connect` come before its reply.
    if (this.state !== "connected" || this.#rejoining) return;
    this.#rejoining = true;
    this.#log.warn({ reason }, "the controller had taken this client for gone; connecting again");
    this.#failPending(new ClientDroppedError(reason));
    this.#submitter.forgetSources();
    this.#links?.channel.send(connectMessage());
  }

  /** Every pending task, request, shared-state call and pipeline fails with `err` (their files go). */
  #failPending(err: Error): void {
    const sinks = [...this.#sinks.values()];
    this.#sinks.clear();
    this.#shm.done();
    for (const s of sinks) s.onFailure(err);
    this.#requests.failAll(err);
    this.#sharedCalls.failAll(err);
    this.#pipes.failAll(err);
  }

  /** Every pending task and request fails with `err`; the channels close. */
  async #teardown(err?: Error): Promise<void> {
    this.#liveness?.stop();
    forgetAtExit(this.#owner);
    this.#failPending(err ?? new ClientClosedError());
    await Promise.all([this.#links?.channel.close(100), this.#links?.notify.close(0), this.#direct?.close()]);
    await this.#links?.monitorStopped();
  }
}
