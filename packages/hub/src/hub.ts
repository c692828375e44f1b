import * as zmq from "zeromq";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { rmSync } from "node:fs";
import {
  Channel, EngineLostError, PACKAGE_VERSION, PROTOCOL_VERSION, UnknownEngineError, assertNever,
  ensureProfileDirs, profilePaths, protocolMajor, sourceHash, writeConnectionFile,
  type ClientToHub, type ClientTask, type ConnectionInfo, type EngineInfo, type EngineTask, type EngineToHub, type HubToClient,
  type HubToEngine, type Incoming, type Logger, type Notification, type Part, type ProfilePaths, type TaskResult,
} from "@ptcluster/protocol";
import { EngineRegistry, type EngineEntry } from "./registry/engine-registry.js";
import { TaskTable, type TaskRecord } from "./scheduler/task-table.js";
import { EMPTY_PART, Outbox } from "./clients/outbox.js";

export interface HubOptions {
  profile?: string;
  clusterId?: string;
  /** Interface to bind (default 127.0.0.1: loopback only). */
  ip?: string;
  /** Address written into connection files for peers to connect to (default: `ip`, or this host's name for a wildcard bind). */
  location?: string;
  /** Cluster key (32 bytes). */
  key: Buffer;
  /** Engines and controller heartbeat period (ms). */
  heartbeatMs?: number;
  /** Heartbeats an engine may miss before it is declared dead. */
  missedHeartbeats?: number;
  logger: Logger;
}

export type HubState = "starting" | "running" | "stopping" | "stopped";

interface ClientEntry { routingId: Buffer; key: string; lastSeen: number; knownFns: Set<string> }

/**
 * The controller: engine registry and heartbeats, routing of tasks to engines and of results back
 * to the client that submitted them, and notifications. It routes by message headers alone:
 * task bodies and binary frames are forwarded without being decoded.
 */
export interface HubEvents {
  engine_up: [EngineInfo];
  engine_down: [{ id: number; reason: string }];
}

export class Hub extends EventEmitter<HubEvents> {
  state: HubState = "starting";
  readonly paths: ProfilePaths;
  private readonly engines = new EngineRegistry();
  private readonly tasks = new TaskTable();
  private readonly clients = new Map<string, ClientEntry>();
  private readonly fnSources = new Map<string, string>();
  private readonly engineOut = new Outbox<EngineTask>();
  private readonly clientOut = new Outbox<TaskResult>();
  private flushScheduled = false;
  private engineCh!: Channel<EngineToHub, HubToEngine>;
  private clientCh!: Channel<ClientToHub, HubToClient>;
  private notifyCh!: Channel<never, Notification>;
  private timer: NodeJS.Timeout | undefined;
  private readonly hbMs: number;
  private readonly misses: number;
  private readonly log: Logger;
  private stopResolve!: () => void;
  /** Resolves when the hub has stopped. */
  readonly stopped: Promise<void>;
  ports = { client: 0, engine: 0, notify: 0 };

  constructor(private readonly opts: HubOptions) {
    super();
    this.paths = profilePaths(opts.profile, opts.clusterId);
    this.hbMs = opts.heartbeatMs ?? 500;
    this.misses = opts.missedHeartbeats ?? 6;
    this.log = opts.logger.child({ component: "hub" });
    this.stopped = new Promise((r) => (this.stopResolve = r));
  }

  /** Binds the sockets, writes the connection files and starts serving. */
  async start(): Promise<void> {
    const ip = this.opts.ip ?? "127.0.0.1";
    const key = this.opts.key;
    const routerOpts = { linger: 200, mandatory: true, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000 };
    const clientSock = new zmq.Router(routerOpts);
    const engineSock = new zmq.Router({ ...routerOpts, handover: true });
    const notifySock = new zmq.Publisher({ linger: 0, sendHighWaterMark: 100_000 });
    await Promise.all([
      clientSock.bind(`tcp://${ip}:*`),
      engineSock.bind(`tcp://${ip}:*`),
      notifySock.bind(`tcp://${ip}:*`),
    ]);
    const port = (s: zmq.Socket) => Number(/:(\d+)$/.exec(s.lastEndpoint ?? "")?.[1]);
    this.ports = { client: port(clientSock), engine: port(engineSock), notify: port(notifySock) };
    this.clientCh = new Channel<ClientToHub, HubToClient>({
      socket: clientSock, clusterKey: key, sendLabel: "h2c", recvLabel: "c2h", router: true, logger: this.log,
      onMessage: (m) => this.onClientMessage(m),
    }).start();
    this.engineCh = new Channel<EngineToHub, HubToEngine>({
      socket: engineSock, clusterKey: key, sendLabel: "h2e", recvLabel: "e2h", router: true, logger: this.log,
      onMessage: (m) => this.onEngineMessage(m),
    }).start();
    this.notifyCh = new Channel<never, Notification>({ socket: notifySock, clusterKey: key, sendLabel: "pub", logger: this.log });

    ensureProfileDirs(this.paths);
    const location = this.opts.location ?? (ip === "0.0.0.0" || ip === "*" ? hostname() : ip);
    const base = {
      protocol: PROTOCOL_VERSION, clusterId: this.opts.clusterId ?? "", profile: this.paths.profile, host: location,
      key: key.toString("hex"), signatureScheme: "chacha20-poly1305" as const, hubPid: process.pid, createdAt: Date.now(),
    };
    writeConnectionFile(this.paths.engineFile, { ...base, kind: "engine", port: this.ports.engine } satisfies ConnectionInfo);
    writeConnectionFile(this.paths.clientFile, { ...base, kind: "client", port: this.ports.client, notifyPort: this.ports.notify } satisfies ConnectionInfo);
    this.timer = setInterval(() => this.onTick(), this.hbMs);
    this.state = "running";
    this.log.info({ ports: this.ports, ip, location }, "controller running");
  }

  // ---- engines ------------------------------------------------------------------------------

  private onEngineMessage({ from, header, parts }: Incoming<EngineToHub>): void {
    if (!from) return;
    const entry = this.engines.byRoutingId(from);
    if (entry) entry.lastSeen = Date.now();
    switch (header.type) {
      case "register":
        this.registerEngine(from, header);
        break;
      case "heartbeat":
        if (entry) {
          entry.info.running = header.running ?? entry.info.running;
          entry.info.state = entry.info.running > 0 ? "busy" : "idle";
        }
        break;
      case "engine_results":
        if (entry) this.onEngineResults(entry, header.results, parts);
        break;
      case "unregister":
        if (entry) this.engineGone(entry.info.id, `unregistered: ${header.reason}`);
        break;
      default:
        assertNever(header);
    }
    this.scheduleFlush();
  }

  private registerEngine(from: Buffer, msg: Extract<EngineToHub, { type: "register" }>): void {
    if (protocolMajor(msg.v) !== protocolMajor(PROTOCOL_VERSION)) {
      const side = protocolMajor(msg.v) < protocolMajor(PROTOCOL_VERSION) ? "engine" : "controller";
      this.engineCh.send({
        type: "register_reply", ok: false, id: -1, heartbeatMs: this.hbMs,
        error: { code: "ERR_PTC_VERSION", message: `The engine speaks protocol ${msg.v} (ptcluster ${msg.pkg}) and the controller ${PROTOCOL_VERSION} (ptcluster ${PACKAGE_VERSION}). Upgrade the ${side}.` },
      }, undefined, from);
      return;
    }
    const existing = this.engines.byRoutingId(from);
    if (existing) this.engineGone(existing.info.id, "re-registered");
    const entry = this.engines.register(from, { uuid: msg.uuid, host: msg.host, pid: msg.pid, concurrency: msg.concurrency }, msg.requestedId);
    this.engineCh.send({ type: "register_reply", ok: true, id: entry.info.id, heartbeatMs: this.hbMs }, undefined, from);
    this.notifyCh.send({ type: "engine_up", engine: entry.info });
    this.emit("engine_up", entry.info);
    this.log.info({ engineId: entry.info.id, pid: msg.pid, host: msg.host }, "engine registered");
  }

  private onEngineResults(entry: EngineEntry, results: TaskResult[], parts: Part[]): void {
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as TaskResult;
      const rec = this.tasks.take(r.id);
      entry.inflight.delete(r.id);
      if (!rec) continue; // late result of a task already failed or finished: exactly once
      entry.info.tasksDone++;
      this.clientOut.push(rec.clientKey, rec.client, { ...r, id: rec.localId, engine: entry.info.id }, parts[i] ?? EMPTY_PART);
    }
  }

  /** An engine is dead or left: fail what it was running, tell everyone. */
  private engineGone(id: number, reason: string): void {
    const entry = this.engines.remove(id);
    if (!entry) return;
    this.log.warn({ engineId: id, reason, inflight: entry.inflight.size }, "engine gone");
    const err = new EngineLostError(id);
    for (const hubId of entry.inflight) {
      const rec = this.tasks.take(hubId);
      if (rec) this.failTask(rec, err.code, err.message);
    }
    entry.inflight.clear();
    this.notifyCh.send({ type: "engine_down", id, reason });
    this.emit("engine_down", { id, reason });
  }

  private failTask(rec: TaskRecord, code: string, message: string): void {
    const now = Date.now();
    this.clientOut.push(rec.clientKey, rec.client, {
      id: rec.localId, ok: false, engine: rec.engine, started: now, completed: now, hubError: { code, message },
    }, EMPTY_PART);
  }

  // ---- clients ------------------------------------------------------------------------------

  private onClientMessage({ from, header, parts }: Incoming<ClientToHub>): void {
    if (!from) return;
    const key = from.toString("latin1");
    let client = this.clients.get(key);
    if (client) client.lastSeen = Date.now();
    switch (header.type) {
      case "connect": {
        if (protocolMajor(header.v) !== protocolMajor(PROTOCOL_VERSION)) {
          const side = protocolMajor(header.v) < protocolMajor(PROTOCOL_VERSION) ? "client" : "controller";
          this.clientCh.send(this.connectReply(false, { code: "ERR_PTC_VERSION", message: `The client speaks protocol ${header.v} (ptcluster ${header.pkg}) and the controller ${PROTOCOL_VERSION} (ptcluster ${PACKAGE_VERSION}). Upgrade the ${side}.` }), undefined, from);
          return;
        }
        client = { routingId: from, key, lastSeen: Date.now(), knownFns: new Set() };
        this.clients.set(key, client);
        this.clientCh.send(this.connectReply(true), undefined, from);
        return;
      }
      case "submit":
        if (!client) return;
        this.onSubmit(client, header.tasks, parts);
        break;
      case "request":
        if (!client) return;
        this.onRequest(client, header.rid, header.req);
        break;
      case "bye":
        this.clients.delete(key);
        return;
      default:
        assertNever(header);
    }
    this.scheduleFlush();
  }

  private connectReply(ok: boolean, error?: { code: string; message: string }): HubToClient {
    return {
      type: "connect_reply", ok, v: PROTOCOL_VERSION, pkg: PACKAGE_VERSION, clusterId: this.opts.clusterId ?? "", heartbeatMs: this.hbMs,
      engines: [...this.engines.all()].map((e) => e.info), ...(error ? { error } : {}),
    };
  }

  private onSubmit(client: ClientEntry, tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const part = parts[i] ?? EMPTY_PART;
      // A source is stored under its own hash only, so no client can change what another's hash runs.
      if (t.fn && t.src !== undefined && sourceHash(t.src) === t.fn) this.fnSources.set(t.fn, t.src);
      for (const target of t.to) {
        const engine = this.engines.get(target);
        const rec = this.tasks.add(client.routingId, client.key, t.id, target);
        if (!engine) {
          const err = new UnknownEngineError(target, this.engines.ids());
          this.tasks.take(rec.hubId);
          this.failTask(rec, err.code, err.message);
          continue;
        }
        this.dispatch(engine, rec, t, part);
      }
    }
  }

  private dispatch(engine: EngineEntry, rec: TaskRecord, t: ClientTask, part: Part): void {
    const task: EngineTask = { id: rec.hubId, op: t.op };
    if (t.fn) {
      task.fn = t.fn;
      if (!engine.knownFns.has(t.fn)) {
        const src = this.fnSources.get(t.fn);
        if (src === undefined) {
          this.tasks.take(rec.hubId);
          this.failTask(rec, "ERR_PTC_PROTOCOL", `The controller does not know the source of function ${t.fn}; resubmit the task.`);
          return;
        }
        task.src = src;
        engine.knownFns.add(t.fn);
      }
    }
    if (t.scope) task.scope = t.scope;
    engine.inflight.add(rec.hubId);
    this.engineOut.push(String(engine.info.id), engine.routingId, task, part);
  }

  private onRequest(client: ClientEntry, rid: number, req: Extract<ClientToHub, { type: "request" }>["req"]): void {
    const reply = (data: unknown) => this.clientCh.send({ type: "reply", rid, ok: true, data }, undefined, client.routingId);
    switch (req.what) {
      case "status":
        reply({
          pid: process.pid, profile: this.paths.profile, clusterId: this.opts.clusterId ?? "", ports: this.ports,
          engines: [...this.engines.all()].map((e) => ({ ...e.info, running: e.inflight.size })),
          clients: this.clients.size, tasksInFlight: this.tasks.size,
          // Messages refused (bad tag, failed authentication, replays, malformed), per socket.
          dropped: { client: { ...this.clientCh.stats.dropped }, engine: { ...this.engineCh.stats.dropped } },
        });
        break;
      case "queue_status": {
        const out: Record<string, { queued: number; running: number; completed: number }> = {};
        for (const e of this.engines.all()) {
          const running = Math.min(e.inflight.size, e.info.concurrency);
          out[e.info.id] = { queued: e.inflight.size - running, running, completed: e.info.tasksDone };
        }
        reply(out);
        break;
      }
      case "shutdown":
        reply({ stopping: true });
        void this.clientCh.drained().then(() => this.stop("shutdown requested by a client"));
        break;
      default:
        assertNever(req, "request");
    }
  }

  // ---- housekeeping ---------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.engineOut.flush((to, tasks, parts) => this.engineCh.send({ type: "tasks", tasks, pf: parts.map((p) => p.frames.length) }, parts, to));
      this.clientOut.flush((to, results, parts) => this.clientCh.send({ type: "results", results, pf: parts.map((p) => p.frames.length) }, parts, to));
    });
  }

  private onTick(): void {
    const now = Date.now();
    for (const e of this.engines.silentSince(now - this.hbMs * this.misses)) {
      this.engineGone(e.info.id, `missed ${this.misses} heartbeats`);
    }
    for (const e of this.engines.all()) this.engineCh.send({ type: "heartbeat", t: now }, undefined, e.routingId);
    this.notifyCh.send({ type: "tick", t: now, engines: this.engines.size });
    this.scheduleFlush();
  }

  /** Registered engines. */
  engineInfos(): EngineInfo[] {
    return [...this.engines.all()].map((e) => e.info);
  }

  /** Stops engines, tells clients, closes sockets and removes the connection files. */
  async stop(reason = "stopped"): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped") return this.stopped;
    this.state = "stopping";
    this.log.info({ reason }, "controller stopping");
    clearInterval(this.timer);
    for (const e of this.engines.all()) this.engineCh.send({ type: "engine_shutdown", reason }, undefined, e.routingId);
    for (const id of this.engines.ids()) this.engineGone(id, "controller stopping");
    this.notifyCh.send({ type: "shutdown_notice", reason });
    this.scheduleFlush();
    await new Promise((r) => setImmediate(r));
    for (const f of [this.paths.clientFile, this.paths.engineFile]) rmSync(f, { force: true });
    await Promise.all([this.engineCh.close(300), this.clientCh.close(300), this.notifyCh.close(100)]);
    this.state = "stopped";
    this.stopResolve();
  }
}
