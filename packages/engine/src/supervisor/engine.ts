import * as zmq from "zeromq";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import {
  Channel,
  DEFAULT_MAX_MESSAGE_BYTES,
  PACKAGE_VERSION,
  curveClientOptions,
  PROTOCOL_VERSION,
  assertNever,
  endpoint,
  type EngineTask,
  type EngineToHub,
  type HubToEngine,
  type Incoming,
  type Logger,
  type Part,
} from "@ptcluster/protocol";
import type { EngineOptions } from "./engine-options.js";
import { TaskRunner } from "./task-runner.js";
import { RelayTransport, commReport, partBytes, type CommIn, type CommTransport } from "./comm-transport.js";
import { CommTasks } from "./comm-tasks.js";
import { openCommPaths, type CommPaths } from "./comm-paths.js";
import { SeenLinks } from "./direct-transport.js";
import { answerCommLinks, commLinksSetup } from "./comm-links.js";
import { DirectTasks } from "./direct-tasks.js";
import { ClientLinks, execClients, execClientsSetup, openClientLinks } from "./client-links.js";
import { heartbeatMsg } from "./heartbeat.js";
import { ResultBatch } from "./result-batch.js";
import { registrationErrors } from "./registration-errors.js";

export type { EngineOptions } from "./engine-options.js";

export type EngineLifecycle = "starting" | "registering" | "running" | "stopping" | "stopped";

/**
 * The engine supervisor: the socket, registration, heartbeats, and the task runner (queue, executor
 * thread, timeouts, cancellation). User code never runs on this thread.
 */
export class Engine {
  state: EngineLifecycle = "starting";
  id = -1;
  readonly uuid = randomBytes(16).toString("hex");
  private channel!: Channel<HubToEngine, EngineToHub>;
  private runner!: TaskRunner;
  private comm!: CommTransport;
  private relay!: RelayTransport;
  private commReceived = 0; // bytes of engine.comm values that reached the supervisor (links count their own)
  private paths: CommPaths | undefined;
  private clients: ClientLinks | undefined;
  private readonly seenLinks = new SeenLinks();
  private readonly commTasks = new CommTasks();
  private readonly direct = new DirectTasks({
    enqueue: (task, part) => {
      this.commTasks.received(task);
      this.runner.enqueue(task, part);
    },
    // A client's lean link if it has one here, else its ZeroMQ link to the peer endpoint.
    toClient: (client, msg, parts) =>
      this.clients?.has(client)
        ? this.clients.toClient(client, msg, parts)
        : (this.paths?.endpoint.toClient(client, msg, parts) ?? 0),
    acknowledged: (client, seq) =>
      this.clients?.has(client)
        ? this.clients.acknowledged(client, seq)
        : this.paths?.endpoint.acknowledged(client, seq),
    report: (result, part) => this.batch.push(result, part),
    cancel: (rids) => this.runner.cancel(rids),
    // Only an executor that owns clients' links can have a task the supervisor has not heard of.
    cancelKeys: (keys) => this.runner.slot.cancelKeys(keys),
    journal: () => this.runner.slot.currentJournal,
    graceMs: () => this.opts.graceMs ?? 1_000,
    // Its group ends for the other members if it ends without the executor's word.
    adopt: (task, started) => (this.commTasks.received(task), this.runner.adopt(task, started)),
    sentByExecutor: (rid) => this.runner.forgetSent(rid),
    learn: (task) => this.runner.learn(task),
  });
  private readonly batch = new ResultBatch(
    (msg, parts) => this.channel.send(msg, parts),
    () => this.state !== "stopped",
  );
  private hbTimer: NodeJS.Timeout | undefined;
  private hbMs = 500;
  private lastHeard = Date.now();
  private readonly concurrency: number;
  private readonly log: Logger;
  private stopResolve!: (code: number) => void;
  /** Resolves with the exit code when the engine has stopped. */
  readonly stopped: Promise<number>;

  constructor(private readonly opts: EngineOptions) {
    this.concurrency = opts.concurrency ?? 1;
    this.log = opts.logger.child({ component: "engine" });
    this.stopped = new Promise((r) => (this.stopResolve = r));
  }

  /** Connects, registers and starts serving; rejects with a named error if registration fails. */
  async start(): Promise<number> {
    this.runner = new TaskRunner({
      concurrency: this.concurrency,
      graceMs: this.opts.graceMs ?? 1_000,
      maxMemoryMb: this.opts.maxMemoryMb,
      maxResultBytes: this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      shm: this.opts.shm,
      logger: this.log,
      onResult: (result, part) => {
        const abort = this.commTasks.ended(result, this.id);
        if (abort) this.comm.send(abort, []);
        if (!this.direct.finished(result, part)) this.batch.push(result, part);
      },
      onReset: (reason, gen) => {
        this.log.warn({ reason }, "executor replaced; namespace reset");
        this.direct.execReset(); // its clients' links closed with it (the new one names its endpoint)
        this.channel.send({ type: "executor_reset", reason, gen });
        this.commTasks.replay(gen, (m, p) => this.runner.commIn(m, p));
      },
      onShared: (msg, parts, gen) => this.channel.send({ ...msg, gen }, parts),
      onComm: (msg, parts, relay) => (relay ? this.relay : this.comm).send(msg, parts),
      onCommLinks: (m, gen) =>
        answerCommLinks(m, gen, { paths: this.paths, slot: this.runner.slot, commTasks: this.commTasks }),
      onReleased: (ids) => this.channel.send({ type: "released", ids }),
      onExecClients: (m) => execClients(m, this.clients, this.direct),
      onExecutorEnd: (end) => this.direct.executorEnded(end, this.id),
    });
    const relay = new RelayTransport((msg, parts) => this.channel.send(msg, parts));
    this.relay = relay;
    this.comm = relay;
    try {
      // Direct peer sockets, bound before registering (the registration advertises the endpoint).
      this.paths = await openCommPaths(this.opts, this.uuid, this.log, {
        id: () => this.id,
        relay,
        lookup: (id) => this.channel.send({ type: "peer_lookup", id }),
        post: (msg, parts) => this.commIn(msg, parts),
        exec: () => this.runner.slot.execAddress,
        execComing: () => this.runner.slot.execComing,
        direct: (from, msg, parts) => this.direct.fromClient(from, msg.tasks, parts),
      });
    } catch (err) {
      await this.abandonStart();
      throw err;
    }
    if (this.paths) this.comm = this.paths.transport;
    this.clients = await openClientLinks(this.paths, this.opts, this.log, {
      id: () => this.id,
      onDirect: (from, msg, parts) => this.direct.fromClient(from, msg.tasks, parts),
      onLost: (client, unacked) => this.direct.clientLost(client, unacked),
      // The executor owns clients' links where it can (`executor/client-tasks.ts`), from the first ask.
      onExecAsk: () =>
        this.clients && this.runner.slot.setClientLinks(execClientsSetup(this.clients.ip, this.opts, this.hbMs)),
    });
    const socket = new zmq.Dealer({
      routingId: this.uuid,
      linger: 200,
      sendHighWaterMark: 100_000,
      receiveHighWaterMark: 100_000,
      ...curveClientOptions(this.opts.curve),
    });
    // The event observer must exist before the handshake, or a CURVE refusal goes unseen.
    const events = this.opts.curve ? socket.events : undefined;
    socket.connect(endpoint(this.opts.host, this.opts.port));
    this.state = "registering";
    const registered = new Promise<number>((resolve, reject) => {
      const timeoutMs = this.opts.registerTimeoutMs ?? 10_000;
      const where = `${this.opts.host}:${this.opts.port}`;
      const timer = setTimeout(() => reject(registrationErrors.timeout(where, timeoutMs)), timeoutMs);
      this.channel = new Channel<HubToEngine, EngineToHub>({
        socket,
        clusterKey: this.opts.key,
        sendLabel: "e2h",
        recvLabel: "h2e",
        selfId: Buffer.from(this.uuid),
        logger: this.log,
        // Once registered (a ping from an engine the controller does not know asks it to register
        // again): the controller acknowledges it, so a cut link's loss is resent once it is back.
        probe: () => {
          if (this.id >= 0) this.channel.send({ type: "ping" });
        },
        onAuthFailed: () => {
          clearTimeout(timer);
          reject(registrationErrors.wrongKey(where));
        },
        onMessage: (m) => {
          if (m.header.type === "register_reply") {
            clearTimeout(timer);
            if (!m.header.ok) reject(registrationErrors.refused(m.header.error));
            else {
              this.id = m.header.id;
              this.hbMs = m.header.heartbeatMs;
              // Before any task can be posted: the executor handles its messages in order.
              this.runner.setIdentity(this.id, hostname(), this.uuid);
              // Executors own their links to peers' executors where they can (`comm-links.ts`).
              const links = commLinksSetup(this.paths, this.opts, this.hbMs);
              if (links) this.runner.slot.setCommLinks(links);
              // Heartbeats start now, not when the executor is ready: the controller counts from here.
              this.lastHeard = Date.now();
              this.hbTimer ??= setInterval(() => this.onHeartbeatTimer(), this.hbMs);
              resolve(m.header.id);
            }
            return;
          }
          this.onMessage(m);
        },
      }).start();
      if (events) {
        events.on("handshake:error:auth", () => {
          clearTimeout(timer);
          reject(registrationErrors.curveRefused(where));
        });
      }
    });
    // Register while the executor thread boots: tasks wait in the queue until it is ready.
    const executorReady = this.runner.whenReady();
    try {
      this.sendRegister();
      [this.id] = await Promise.all([registered, executorReady]);
    } catch (err) {
      await this.abandonStart();
      throw err;
    }
    this.state = "running";
    this.log.info({ engineId: this.id }, "engine registered");
    return this.id;
  }

  /** Start failed: what was opened closes, and the engine is stopped (exit code 1). */
  private async abandonStart(): Promise<void> {
    await this.shutdownResources();
    this.state = "stopped";
    this.stopResolve(1);
  }

  /** Registers (again, after the controller dropped us: then asking for the same id). */
  private sendRegister(): void {
    const requestedId = this.id >= 0 ? this.id : this.opts.requestedId;
    this.channel.send({
      type: "register",
      v: PROTOCOL_VERSION,
      pkg: PACKAGE_VERSION,
      uuid: this.uuid,
      host: hostname(),
      pid: process.pid,
      node: process.version,
      concurrency: this.concurrency,
      ...(requestedId !== undefined ? { requestedId } : {}),
      ...(this.opts.tag !== undefined ? { tag: this.opts.tag } : {}),
      ...(this.opts.mpi ? { mpi: this.opts.mpi } : {}),
      ...(this.opts.shm ? { shm: true } : {}),
      ...(this.paths ? { peer: this.paths.endpoint.address } : {}),
      ...(this.paths?.endpoint.publicKey ? { peerKey: this.paths.endpoint.publicKey } : {}),
      ...(this.clients ? { lean: this.clients.address } : {}),
    });
  }

  private onMessage({ header, parts }: Incoming<HubToEngine>): void {
    this.lastHeard = Date.now();
    switch (header.type) {
      case "tasks":
        for (let i = 0; i < header.tasks.length; i++)
          this.direct.fromController(header.tasks[i] as EngineTask, parts[i] ?? { body: Buffer.alloc(0), frames: [] });
        break;
      case "engine_cancel": {
        const ids = this.direct.toRunner(header.ids, this.id);
        if (header.queuedOnly) this.runner.cancelQueued(ids);
        else this.runner.cancel(ids);
        break;
      }
      case "release":
        this.channel.send({ type: "released", ids: this.runner.release(header.max) });
        break;
      case "heartbeat":
        break;
      case "forget_fns":
        this.runner.forgetFunctions(header.fns);
        break;
      case "shared_reply":
        this.runner.sharedReply(header, parts);
        break;
      case "peer_state":
        // An engine gone or back: its next messages look its endpoint up again.
        this.paths?.transport.reset(header.id);
        this.commIn(header, parts);
        break;
      case "comm":
      case "comm_abort":
        this.commIn(header, parts);
        break;
      case "direct_whole":
        this.direct.whole(header.ids);
        break;
      case "peer_endpoint":
        this.paths?.transport.endpointOf(header.id, header.endpoint, header.key);
        break;
      case "engine_shutdown":
        void this.stop(`controller asked: ${header.reason}`, 0, { controllerLeaving: true });
        break;
      case "register_reply":
        // The answer to a re-registration: the controller had dropped this engine and took it back.
        if (header.ok) {
          this.id = header.id;
          this.runner.setIdentity(this.id, hostname(), this.uuid);
          this.log.warn({ engineId: this.id }, "registered again");
        }
        break;
      case "reregister":
        // The controller declared us dead and failed or moved our tasks: drop them, so the engine
        // comes back free, then register again (asking for the same id).
        // Its clients' links too (a task they sent before it froze may wait there unread), and
        // what runs from the executor's own links before its report came is stopped as the rest.
        this.clients?.dropLinks();
        this.runner.slot.dropClientLinks();
        this.runner.cancelAll();
        this.commTasks.clear();
        this.direct.clear();
        this.sendRegister();
        break;
      default:
        assertNever(header);
    }
  }

  /** An `engine.comm` message for the executor (from the controller or a peer), kept for a replacement. */
  private commIn(msg: CommIn, parts: Part[]): void {
    // A copy resent by relay after a direct link failed, already delivered directly.
    if (msg.type !== "peer_state") this.commReceived += partBytes(parts);
    if (msg.type !== "peer_state" && !this.seenLinks.fresh(msg)) return;
    this.commTasks.posted(msg, parts, this.runner.commIn(msg, parts));
  }

  private onHeartbeatTimer(): void {
    const orphanMs = this.opts.orphanTimeoutMs ?? 30_000;
    const silent = Date.now() - this.lastHeard > orphanMs;
    if (silent || this.channel.overdue(orphanMs).length > 0) {
      const what = silent ? `silent for ${orphanMs} ms` : `has not acknowledged messages for ${orphanMs} ms`;
      this.log.error({ orphanMs }, `controller ${what}; exiting`);
      void this.stop(`controller ${what}`, 3);
      return;
    }
    const now = Date.now();
    this.paths?.transport.checkLinks(this.hbMs * 6);
    if (this.paths) this.direct.checkClients(this.paths.endpoint, this.hbMs * 6);
    if (this.clients) this.direct.checkClients(this.clients, this.hbMs * 6);
    for (const [rid, at] of this.runner.heldStarts()) this.direct.heldStart(rid, at);
    const running = this.runner.running(now);
    this.commTasks.running(running.map(([rid]) => rid));
    const current = this.direct.toController(running);
    const comm = commReport(this.comm, this.relay, this.runner.slot.linkCounts, this.commReceived);
    this.channel.send(
      heartbeatMsg(
        {
          stats: this.channel.stats,
          running: this.runner.load,
          done: this.runner.done,
          current,
          comm,
          direct: this.direct.counts,
        },
        now,
      ),
    );
  }

  /** Unregisters (if it was registered), stops the executor, closes the socket. */
  async stop(reason: string, code = 0, how: { controllerLeaving?: boolean } = {}): Promise<number> {
    if (this.state === "stopping" || this.state === "stopped") return this.stopped;
    const wasRunning = this.state === "running";
    this.state = "stopping";
    this.log.info({ reason }, "engine stopping");
    clearInterval(this.hbTimer);
    this.direct.close();
    // A controller that is stopping has already let this engine go, and closes without
    // acknowledging anything more: no goodbye, and no waiting for acknowledgements.
    if (wasRunning && !how.controllerLeaving) this.channel.send({ type: "unregister", reason });
    await this.shutdownResources(how.controllerLeaving === true);
    this.state = "stopped";
    this.stopResolve(code);
    return code;
  }

  private async shutdownResources(controllerLeaving = false): Promise<void> {
    await Promise.all([
      this.channel?.close(200, { awaitAcks: !controllerLeaving }),
      this.runner?.terminate(),
      this.paths?.close(),
    ]);
    this.clients?.close();
  }
}
