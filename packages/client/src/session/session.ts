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
  type Part,
  type PipeOnError,
  type PipeStage,
  type TaskResult,
} from "@ptcluster/protocol";
import { clientSharedNamespace } from "./shared-namespace.js";
import { closeAtExit, forgetAtExit, type Closable } from "../keep-alive.js";
import type { ClientEmitter } from "./client-events.js";
import { Liveness, hubLostError, hubStoppedError } from "./liveness.js";
import { Roster } from "./roster.js";
import { connectMessage, linkReport, openLinks, type Links } from "./sockets.js";
import { Comeback } from "./comeback.js";
import { onNotification, type NotificationTarget } from "./notifications.js";
import { Submitter } from "./submitter.js";
import { DirectLinks } from "./direct-links.js";
import { awaitWelcome } from "./await-welcome.js";
import { PendingWork } from "./pending-work.js";
import { DirectGate } from "./direct-gate.js";
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
  #id = randomBytes(16).toString("hex");
  readonly roster: Roster;
  readonly #connection: ConnectionInfo;
  readonly #log: Logger;
  /** The `Client`: it emits the session's events and is closed when the process runs out of work. */
  readonly #owner: ClientEmitter & Closable;
  /** Pending work, and only that, keeps the process alive (see `#updateHold`); the client reads it for `rc.abort()` and waits. */
  readonly work = new PendingWork(
    () => this.#updateHold(),
    (msg, parts) => this.#send(msg, parts),
    (hash, src) => this.#submitter.firstUse(hash, src),
  );
  /** Named objects held by the controller (`rc.shared`). */
  readonly shared = clientSharedNamespace(this.work.sharedCalls, () => this.assertOpen());
  readonly #submitter: Submitter;
  readonly #gate = new DirectGate({
    opening: () => this.work.sharedCalls.opensPending(),
    send: (tasks, parts) => {
      if (this.state === "connected") this.#direct?.submit(tasks, parts);
    },
  });
  #shm: ClientShm;
  #links: Links | undefined;
  #direct: DirectLinks | undefined;
  #liveness: Liveness | undefined;
  /** After the controller was lost: the connection waiting for it to answer again. */
  #comeback: Comeback | undefined;
  /** Task ids cancelled this tick, not sent yet (`cancel`). */
  readonly #cancels: number[] = [];
  /** `close` began: a loss noticed meanwhile does not wait for the controller. */
  #closing = false;
  readonly #notified: NotificationTarget;
  /** A `connect` went again (the controller had taken this client for gone), not answered yet. */
  #rejoining = false;
  /** Whether the channels hold the process (they do from the start, until connected). */
  #holding = true;

  constructor(connection: ConnectionInfo, log: Logger, owner: ClientEmitter & Closable) {
    this.#connection = connection;
    this.#log = log;
    this.#owner = owner;
    this.roster = new Roster(owner);
    this.#notified = {
      roster: this.roster,
      events: owner,
      connected: () => this.state === "connected",
      engineDown: (id) => this.#direct?.engineDown(id),
      engines: () => this.request({ what: "status" }) as Promise<{ engines: EngineInfo[] }>,
      stopping: (reason) => this.#hubLost(hubStoppedError(reason), false),
    };
    this.#shm = new ClientShm(connection, this.#id);
    this.#submitter = new Submitter({
      maxMessageBytes: this.maxMessageBytes,
      // DirectView tasks go straight to the engines this client reaches (`direct-links.ts`).
      send: (tasks, parts) => (this.#direct ? this.#gate.submit(tasks, parts) : this.#submit(tasks, parts)),
    });
  }

  /** This client's id, the first half of its tasks' `msgIds` (a new one once it connected again after the controller was lost). */
  get id(): string {
    return this.#id;
  }

  /** Opens the channels and waits for the controller's welcome. */
  async open(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const { links, welcomed } = this.#openLinks(this.#id);
    this.#links = links;
    try {
      await awaitWelcome(welcomed, this.#connection, timeoutMs, signal);
    } catch (err) {
      await this.#teardown();
      this.state = "closed";
      throw err;
    }
    this.#connected(links, await welcomed);
  }

  /** Channels under client id `id`, `connect` sent; `welcomed` resolves to the controller's heartbeat period. */
  #openLinks(id: string, o?: { replaces: string; idle: true }): { links: Links; welcomed: Promise<number> } {
    let heartbeatMs = 500;
    const { links, handshake } = openLinks(
      this.#connection,
      id,
      this.#log,
      {
        welcome: (reply) => {
          heartbeatMs = reply.heartbeatMs;
          this.roster.seed(reply.engines);
        },
        message: (m) => this.#onMessage(m),
        notification: (n) => {
          this.#liveness?.heard();
          onNotification(n, this.#notified);
        },
      },
      o,
    );
    return { links, welcomed: handshake.then(() => heartbeatMs) };
  }

  /** The controller welcomed `links`: the direct path and the liveness watch start on them. */
  #connected(links: Links, heartbeatMs: number): void {
    this.#links = links;
    this.state = "connected";
    this.#direct = new DirectLinks({
      connection: this.#connection,
      routingId: this.#id,
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
    const busy = this.state === "connecting" || this.work.busy;
    if (busy === this.#holding) return;
    this.#holding = busy;
    this.#links?.channel.hold(busy);
    this.#links?.notify.hold(busy);
    this.#direct?.hold(busy);
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
      throw new HubLostError(
        "The controller is unreachable: this client connects again by itself when it answers (event `reconnected`); if it exited, restart the cluster and connect again.",
      );
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
    this.work.sinks.set(id, sink);
    return id;
  }

  /**
   * Cancels of one tick go in one message (a signal aborted cancels every call made with it at
   * once: in one message the controller cannot start a queued one between the others' cancels),
   * before anything sent after them.
   */
  cancel(ids: number[]): void {
    if (ids.length === 0 || this.state !== "connected") return;
    this.#submitter.flush();
    this.#gate.release();
    if (this.#cancels.length === 0) queueMicrotask(() => this.#send());
    for (const id of ids) this.#cancels.push(id);
  }

  release(id: number): void {
    this.work.sinks.delete(id);
    this.#direct?.release(id);
  }

  openPipe(stages: PipeStage[], scopes: Part[], onError: PipeOnError, sink: PipeSink): PipeHandle {
    this.assertOpen();
    // Tasks batched this tick go first: one of them may carry a source this pipeline then omits.
    this.#submitter.flush();
    return this.work.pipes.open(stages, scopes, onError, sink);
  }

  // ---- for the client --------------------------------------------------------------------------
  /** Asks the controller for another client's task result (`from`:`n`), delivered to `sink` under a new id. */
  adopt(from: string, n: number, sink: TaskSink): number {
    this.assertOpen();
    const id = this.#submitter.newId();
    this.work.sinks.set(id, sink);
    this.#send({ type: "adopt", items: [{ from, id: n, as: id }] });
    return id;
  }

  request(req: HubRequest, timeoutMs?: number): Promise<unknown> {
    this.assertOpen();
    return this.work.requests.request(req, (rid, r) => this.#send({ type: "request", rid, req: r }), timeoutMs);
  }

  stats(): LinkReport {
    return linkReport(this.#links as Links, this.#direct?.report());
  }

  /** Says goodbye (if connected) and closes; pending work fails with `err`. */
  async close(err: Error, bye: boolean): Promise<void> {
    if (bye && this.state === "connected") this.#send({ type: "bye" });
    this.#closing = true;
    await this.#teardown(err);
    this.state = "closed";
  }

  // ---- what comes in -------------------------------------------------------------------------
  #submit(tasks: ClientTask[], parts: Part[], done?: TaskResult[]): void {
    this.#send(submitMessage(tasks, parts, done), parts);
  }

  #send(msg?: ClientToHub, parts?: Part[]): void {
    // Nothing goes out once the session is closed or lost (a batch flushed late is dropped).
    if (this.state !== "connected") return;
    // What the direct path owes the controller goes first (it names tasks a cancel may name),
    // straight to the channel: through `#send` again, the cancels would overtake it.
    this.#direct?.flush((t, p, done) => this.#links?.channel.send(submitMessage(t, p, done), p));
    if (this.#cancels.length)
      this.#links?.channel.send({ type: "cancel", ids: this.#cancels.splice(0), reason: "cancel" });
    if (msg) this.#links?.channel.send(msg, parts);
  }

  /** A result, by either path, to its sink: its shared-memory files read and checked first. */
  #result(r: TaskResult, received: Part): void {
    const sink = this.work.sinks.get(r.id);
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
      case "shared_reply":
      case "pipe_out":
      case "pipe_failed":
        this.work.settle(header, parts);
        break;
      case "connect_reply":
        this.#rejoining = false;
        break;
      case "rejoin":
        this.#rejoin(header.reason);
        break;
      case "ping": // the controller's probe: acknowledged by the channel
        break;
      default:
        assertNever(header);
    }
  }

  /** Pending work fails with `err`; unless the controller said it stops, a new connection waits for it (`comeback.ts`). */
  #hubLost(err: HubLostError, waitForIt = true): void {
    if (this.state !== "connected") return;
    this.state = "hub-lost";
    this.#log.error({ err }, "controller lost");
    void this.#teardown(err).then(() => {
      if (!waitForIt || this.state !== "hub-lost" || this.#closing) return;
      this.#comeback = new Comeback({
        open: (id) => this.#openLinks(id, { replaces: this.#id, idle: true }),
        back: (id, links, heartbeatMs) => {
          this.#comeback = undefined;
          this.#id = id;
          this.#shm = new ClientShm(this.#connection, id);
          this.#submitter.forgetSources();
          // The new channels hold nothing (they were opened so); `#updateHold` applies what work needs.
          this.#holding = false;
          this.#connected(links, heartbeatMs);
          this.#owner.emit("reconnected");
        },
        log: this.#log,
      });
    });
    this.#owner.emit("hub_lost", err);
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
    this.#shm.done();
    this.work.failAll(new ClientDroppedError(reason));
    this.#submitter.forgetSources();
    this.#links?.channel.send(connectMessage());
  }

  /** Every pending task, request, shared-state call and pipeline fails with `err` (their files go); the channels close. */
  async #teardown(err?: Error): Promise<void> {
    this.#liveness?.stop();
    forgetAtExit(this.#owner);
    this.#shm.done();
    this.work.failAll(err ?? new ClientClosedError());
    const comeback = this.#comeback;
    this.#comeback = undefined;
    await Promise.all([
      this.#links?.channel.close(100),
      this.#links?.notify.close(0),
      this.#direct?.close(),
      comeback?.stop(),
    ]);
    await this.#links?.monitorStopped();
  }
}

function submitMessage(tasks: ClientTask[], parts: Part[], done?: TaskResult[]): ClientToHub {
  return { type: "submit", tasks, pf: parts.map((p) => p.frames.length), t: Date.now(), ...(done ? { done } : {}) };
}
