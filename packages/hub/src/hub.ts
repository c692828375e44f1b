import * as zmq from "zeromq";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { rmSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  Channel, DEFAULT_MAX_MESSAGE_BYTES, EngineLostError, PACKAGE_VERSION, PROTOCOL_VERSION, TaskCancelledError, UnknownEngineError, assertNever,
  ensureProfileDirs, profilePaths, protocolMajor, writeConnectionFile,
  type ClientToHub, type ClientTask, type ConnectionInfo, type EngineInfo, type EngineTask, type EngineToHub, type HubToClient,
  type HubToEngine, type Incoming, type Logger, type Notification, type Part, type ProfilePaths, type SchedulerScheme, type TaskResult,
  type CurveKeyPair, type CurveMaterial,
} from "@ptcluster/protocol";
import { LoadBalancer } from "./scheduler/load-balancer.js";
import { ZapHandler } from "./security/zap-handler.js";
import { ResultStore } from "./results/result-store.js";
import { EngineRegistry, type EngineEntry } from "./registry/engine-registry.js";
import { engineActivity, noteRunning } from "./registry/engine-activity.js";
import { TaskTable, type TaskRecord } from "./scheduler/task-table.js";
import { FunctionSources } from "./scheduler/function-sources.js";
import { EMPTY_PART, Outbox } from "./clients/outbox.js";

/** ZeroMQ's form of a bind address: IPv6 literals in brackets, `0.0.0.0` as is. */
function bindAddress(ip: string): string {
  return ip.includes(":") && !ip.startsWith("[") ? `[${ip}]` : ip;
}

export interface HubOptions {
  profile?: string;
  clusterId?: string;
  /** Interface to bind (default 127.0.0.1: loopback only). */
  ip?: string;
  /** Fixed ports (for firewalls); unset or 0: any free port. Engines need `engine`, clients `client` and `notify`. */
  ports?: { client?: number | undefined; engine?: number | undefined; notify?: number | undefined };
  /** Address written into connection files for peers to connect to (default: `ip`, or this host's name for a wildcard bind). */
  location?: string;
  /** Cluster key (32 bytes). */
  key: Buffer;
  /** Engines and controller heartbeat period (ms). */
  heartbeatMs?: number;
  /** Heartbeats an engine may miss before it is declared dead. */
  missedHeartbeats?: number;
  /** Load-balancing scheme (default `leastload`). */
  scheme?: SchedulerScheme;
  /**
   * A client silent this long (ms, default 30 s) is presumed gone and its unfinished tasks are
   * cancelled. Clients ping every heartbeat period from their event loop, so a client script that
   * blocks its event loop for longer than this loses its queued work.
   */
  clientTimeoutMs?: number;
  /** How long results of a client that went away are kept for `rc.getResult` (ms, default 10 min). */
  resultTtlMs?: number;
  /**
   * CURVE encryption (`--curve`): the controller's key pair and the client and engine pairs it
   * writes into the connection files; `allowedKeys` adds public keys it also accepts.
   */
  curve?: CurveMaterial & { allowedKeys?: string[] };
  /** Largest message a client or engine may send (bytes, default 1 GiB); larger frames drop the connection before they are buffered. */
  maxMessageBytes?: number;
  /**
   * Starts more engines on request (`ptcluster engines`), resolving once they registered. Given
   * by `ptcluster start`, which owns the launchers; a bare `ptcluster hub` has none.
   */
  launch?: (req: { n: number; launcher: string; options: Record<string, unknown> }) => Promise<unknown>;
  logger: Logger;
  /** The file `logger` writes to, for `ptcluster status` to point at. */
  logFile?: string;
}

/**
 * Full garbage collections, for `status({ gc: true })`: a diagnostic, to measure what is live. A
 * second one after a turn of the event loop, when freed buffers' finalizers have run.
 */
async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setImmediate(r));
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
  private readonly fnSources = new FunctionSources((hash) => this.fnDropped(hash));
  private readonly tasks = new TaskTable(this.fnSources);
  private readonly clients = new Map<string, ClientEntry>();
  /** Functions whose sources were dropped, for the engines to forget (sent with the next flush). */
  private forgottenFns: string[] = [];
  private readonly lb: LoadBalancer;
  private readonly store: ResultStore;
  private readonly engineOut = new Outbox<EngineTask>();
  private readonly clientOut = new Outbox<TaskResult>();
  private flushScheduled = false;
  /** When the heartbeat tick last ran. */
  private lastTick = Date.now();
  private engineCh!: Channel<EngineToHub, HubToEngine>;
  private clientCh!: Channel<ClientToHub, HubToClient>;
  private notifyCh!: Channel<never, Notification>;
  private timer: NodeJS.Timeout | undefined;
  private zap: ZapHandler | undefined;
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
    this.store = new ResultStore(opts.resultTtlMs ?? 600_000);
    this.lb = new LoadBalancer(opts.scheme ?? "leastload", this.engines, {
      dispatch: (engine, rec) => {
        const lb = rec.lb;
        if (!lb) return;
        lb.attempts++;
        this.sendTask(engine, rec, lb.task, lb.part, true);
        this.scheduleFlush();
      },
      release: (engine, max) => {
        this.log.debug({ engineId: engine.info.id, max }, "release asked");
        this.engineCh.send({ type: "release", max }, undefined, engine.routingId);
      },
    });
  }

  /** Binds the sockets, writes the connection files and starts serving. */
  async start(): Promise<void> {
    const ip = this.opts.ip ?? "127.0.0.1";
    const key = this.opts.key;
    const maxMessageBytes = this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    // ZeroMQ checks each frame against maxMessageSize before buffering it: a peer announcing a
    // larger frame (with or without the key) is disconnected instead of costing memory.
    const curve = this.opts.curve;
    if (curve) {
      // Every connection is encrypted, and accepted only from an allowed public key (fail closed:
      // with the ZAP domain enforced, no handler means no connection).
      this.zap = new ZapHandler(new Set([curve.client.publicKey, curve.engine.publicKey, ...(curve.allowedKeys ?? [])]), this.log);
      await this.zap.start();
    }
    const security = curve ? { curveServer: true, curveSecretKey: curve.server.secretKey, zapDomain: "ptcluster", zapEnforceDomain: true } : {};
    const routerOpts = { linger: 200, mandatory: true, sendHighWaterMark: 100_000, receiveHighWaterMark: 100_000, maxMessageSize: maxMessageBytes + 65_536, ...security };
    const clientSock = new zmq.Router(routerOpts);
    const engineSock = new zmq.Router({ ...routerOpts, handover: true });
    const notifySock = new zmq.Publisher({ linger: 0, sendHighWaterMark: 100_000, ...security });
    const fixed = this.opts.ports ?? {};
    const bindPort = (p: number | undefined) => (p ? String(p) : "*");
    const where = bindAddress(ip);
    await Promise.all([
      clientSock.bind(`tcp://${where}:${bindPort(fixed.client)}`),
      engineSock.bind(`tcp://${where}:${bindPort(fixed.engine)}`),
      notifySock.bind(`tcp://${where}:${bindPort(fixed.notify)}`),
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
    // Notifications are one-way and best effort (clients catch up from `tick`): no acknowledgements.
    this.notifyCh = new Channel<never, Notification>({ socket: notifySock, clusterKey: key, sendLabel: "pub", logger: this.log, reliable: false });

    ensureProfileDirs(this.paths);
    const location = this.opts.location ?? (ip === "0.0.0.0" || ip === "*" ? hostname() : ip);
    const base = {
      protocol: PROTOCOL_VERSION, clusterId: this.opts.clusterId ?? "", profile: this.paths.profile, host: location,
      key: key.toString("hex"), signatureScheme: "chacha20-poly1305" as const, hubPid: process.pid, createdAt: Date.now(), maxMessageBytes,
    };
    const keysFor = (pair: CurveKeyPair | undefined) => (curve && pair ? { curve: { serverKey: curve.server.publicKey, ...pair } } : {});
    writeConnectionFile(this.paths.engineFile, { ...base, kind: "engine", port: this.ports.engine, ...keysFor(curve?.engine) } satisfies ConnectionInfo);
    writeConnectionFile(this.paths.clientFile, { ...base, kind: "client", port: this.ports.client, notifyPort: this.ports.notify, ...keysFor(curve?.client) } satisfies ConnectionInfo);
    this.lastTick = Date.now();
    this.timer = setInterval(() => this.onTick(), this.hbMs);
    this.state = "running";
    this.log.info({ ports: this.ports, ip, location }, "controller running");
  }

  // ---- engines ------------------------------------------------------------------------------

  private onEngineMessage({ from, header, parts }: Incoming<EngineToHub>): void {
    if (!from) return;
    const entry = this.engines.byRoutingId(from);
    if (entry) entry.lastSeen = Date.now();
    else if (header.type !== "register" && header.type !== "unregister") this.askToRegister(from);
    switch (header.type) {
      case "register":
        this.registerEngine(from, header);
        break;
      case "heartbeat":
        if (entry) {
          entry.info.running = header.running ?? entry.info.running;
          entry.info.state = entry.info.running > 0 ? "busy" : "idle";
          if (header.link) entry.link = header.link;
          noteRunning(entry, header.current, Date.now());
        }
        break;
      case "engine_results":
        if (entry) this.onEngineResults(entry, header.results, parts);
        break;
      case "unregister":
        if (entry) this.engineGone(entry.info.id, `unregistered: ${header.reason}`);
        break;
      case "released":
        if (entry) this.onReleased(entry, header.ids);
        break;
      case "executor_reset":
        if (entry) {
          entry.knownFns.clear();
          this.notifyCh.send({ type: "engine_reset", id: entry.info.id, reason: header.reason });
        }
        break;
      default:
        assertNever(header);
    }
    this.scheduleFlush();
  }

  /** An engine we do not know (declared dead, say, after a long silence) is alive: take it back. */
  private readonly reregisterAsked = new Map<string, number>();
  private askToRegister(from: Buffer): void {
    const key = from.toString("latin1");
    const now = Date.now();
    if ((this.reregisterAsked.get(key) ?? 0) > now - this.hbMs) return;
    if (this.reregisterAsked.size > 10_000) this.reregisterAsked.clear();
    this.reregisterAsked.set(key, now);
    this.engineCh.send({ type: "reregister" }, undefined, from);
  }

  /** Tasks an engine handed back unstarted: to the front of the queue, for an idle engine. */
  private onReleased(entry: EngineEntry, ids: number[]): void {
    this.log.debug({ engineId: entry.info.id, ids }, "tasks released");
    entry.releasePending = false;
    // Nothing to give back: no reason to place again until something changes (no release ping-pong).
    if (ids.length === 0) return;
    const cancelled = new TaskCancelledError("The task was cancelled before it started.");
    for (const id of ids) {
      const rec = this.tasks.get(id);
      if (!rec?.lb || rec.engine !== entry.info.id) continue;
      entry.inflight.delete(id);
      rec.lb.attempts--;
      if (rec.cancelled) {
        this.tasks.take(id);
        this.failTask(rec, cancelled.code, cancelled.message);
      } else this.lb.requeue(rec);
    }
    this.lb.schedule();
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
    const entry = this.engines.register(from, {
      uuid: msg.uuid, host: msg.host, pid: msg.pid, concurrency: msg.concurrency,
      ...(msg.tag !== undefined ? { tag: String(msg.tag).slice(0, 200) } : {}),
      ...(msg.mpi && Number.isInteger(msg.mpi.rank) && Number.isInteger(msg.mpi.size) ? { mpi: { rank: msg.mpi.rank, size: msg.mpi.size } } : {}),
    }, msg.requestedId);
    this.engineCh.send({ type: "register_reply", ok: true, id: entry.info.id, heartbeatMs: this.hbMs }, undefined, from);
    this.notifyCh.send({ type: "engine_up", engine: entry.info });
    this.emit("engine_up", entry.info);
    this.lb.schedule();
    this.log.info({ engineId: entry.info.id, pid: msg.pid, host: msg.host }, "engine registered");
  }

  private onEngineResults(entry: EngineEntry, results: TaskResult[], parts: Part[]): void {
    const id = entry.info.id;
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as TaskResult;
      const rec = this.tasks.get(r.id);
      // Late or duplicate: the task finished, failed, or moved to another engine. Exactly once.
      if (!rec || rec.engine !== id || !entry.inflight.delete(r.id)) continue;
      entry.info.tasksDone++;
      const lb = rec.lb;
      if (lb && !r.ok) {
        const code = r.sysError?.code;
        if (code === "ERR_PTC_EXECUTOR_RESET" || code === "ERR_PTC_ENGINE_LOST") {
          // Lost with its executor: like an engine death for this task.
          if (this.survivesDeath(rec)) continue;
        } else if (!r.sysError && lb.retriesLeft > 0 && !rec.cancelled) {
          lb.retriesLeft--;
          (lb.failedOn ??= new Set()).add(id);
          this.lb.requeue(rec);
          continue;
        }
      }
      this.tasks.take(r.id);
      const out: TaskResult = { ...r, id: rec.localId, engine: id };
      if (lb) out.attempts = lb.attempts;
      this.deliver(rec, out, parts[i] ?? EMPTY_PART);
    }
    this.lb.schedule();
  }

  /** A load-balanced task lost its engine: back in the queue, unless it has killed too many. */
  private survivesDeath(rec: TaskRecord): boolean {
    const lb = rec.lb;
    if (!lb || rec.cancelled) return false;
    lb.deaths++;
    if (lb.deaths > lb.maxDeaths) return false;
    this.lb.requeue(rec);
    return true;
  }

  /** An engine is dead or left: fail what it was running, tell everyone. */
  private engineGone(id: number, reason: string): void {
    const entry = this.engines.remove(id);
    if (!entry) return;
    this.log.warn({ engineId: id, reason, inflight: entry.inflight.size }, "engine gone");
    // Stopping, the engines' `engine_shutdown` still has to reach them.
    if (this.state === "running") this.engineCh.forget(entry.routingId);
    const err = new EngineLostError(id);
    for (const hubId of entry.inflight) {
      const rec = this.tasks.get(hubId);
      if (!rec || rec.engine !== id) continue;
      if (this.survivesDeath(rec)) continue;
      this.tasks.take(hubId);
      if (rec.cancelled) {
        const c = new TaskCancelledError("The task was cancelled; its engine died before confirming.");
        this.failTask(rec, c.code, c.message);
        continue;
      }
      const poison = rec.lb
        ? new EngineLostError(id, `This task was running on ${rec.lb.deaths} engines that died (the last was engine ${id}); it is failed as a poison task instead of being retried again.`)
        : err;
      this.failTask(rec, poison.code, poison.message);
    }
    entry.inflight.clear();
    this.notifyCh.send({ type: "engine_down", id, reason });
    this.emit("engine_down", { id, reason });
  }

  /** To the task's client, or, if it went away, into the result store for `rc.getResult`. */
  private deliver(rec: TaskRecord, out: TaskResult, part: Part): void {
    const adopted = this.adoptedTotals.size ? `${rec.clientKey}:${rec.localId}` : undefined;
    const total = adopted ? this.adoptedTotals.get(adopted) : undefined;
    if (total !== undefined) {
      out.total = total;
      if (this.tasks.idsOf(rec.clientKey, rec.localId).length === 0) this.adoptedTotals.delete(adopted as string);
    }
    if (this.clients.has(rec.clientKey)) this.clientOut.push(rec.clientKey, rec.client, out, part);
    else this.store.put(rec.clientKey, rec.localId, out, part, this.tasks.idsOf(rec.clientKey, rec.localId).length);
  }

  private failTask(rec: TaskRecord, code: string, message: string): void {
    const now = Date.now();
    const out: TaskResult = { id: rec.localId, ok: false, engine: rec.engine, started: now, completed: now, sysError: { code, message } };
    if (rec.lb) out.attempts = rec.lb.attempts;
    this.deliver(rec, out, EMPTY_PART);
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
        if (client) this.releaseFns(client);
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
      case "cancel":
        if (!client) return;
        this.cancel(header.ids.flatMap((localId) => this.tasks.idsOf(key, localId)));
        break;
      case "bye":
        this.clientGone(key, "said bye");
        break;
      case "ping":
        break;
      case "adopt":
        if (!client) return;
        this.onAdopt(client, header.items);
        break;
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

  /**
   * A client left (or went silent): its tasks that have not started are cancelled, so engines
   * serve others; the results of those still running are kept for a while (`rc.getResult`).
   */
  private clientGone(key: string, reason: string): void {
    const client = this.clients.get(key);
    this.clients.delete(key);
    if (client) {
      // Results on their way that the client never acknowledged are kept with those still to
      // come: it may have died before they arrived.
      for (const { header, parts } of this.clientCh.forget(client.routingId)) {
        if (header.type !== "results") continue;
        header.results.forEach((r, i) => this.store.put(key, r.id, r, parts[i] ?? EMPTY_PART, this.tasks.idsOf(key, r.id).length));
      }
    }
    const ids = this.tasks.allOf(key);
    if (ids.length) this.log.info({ tasks: ids.length, reason }, "client gone; cancelling its queued tasks");
    this.cancel(ids, true);
    if (client) this.releaseFns(client);
  }

  /** A client lets go of the function sources it sent (its tasks still running keep theirs). */
  private releaseFns(client: ClientEntry): void {
    for (const fn of client.knownFns) this.fnSources.release(fn);
    client.knownFns.clear();
  }

  /** A function source was dropped: engines that compiled it are told to forget it too. */
  private fnDropped(hash: string): void {
    let anyone = false;
    for (const e of this.engines.all()) anyone = e.knownFns.delete(hash) || anyone;
    if (anyone) {
      this.forgottenFns.push(hash);
      this.scheduleFlush();
    }
  }

  /** Another client takes over tasks of a client that went away. */
  private onAdopt(client: ClientEntry, items: Array<{ from: string; id: number; as: number }>): void {
    for (const { from, id, as } of items) {
      const running = this.tasks.idsOf(from, id);
      const kept = this.store.take(from, id);
      const total = (kept?.results.length ?? 0) + running.length;
      if (total === 0) {
        const now = Date.now();
        this.clientOut.push(client.key, client.routingId, {
          id: as, ok: false, engine: -1, started: now, completed: now, total: 1,
          sysError: { code: "ERR_PTC_UNKNOWN_TASK", message: `No result is kept under ${from}:${id}: it was fetched already, expired, belongs to a client that is still connected, or never existed.` },
        }, EMPTY_PART);
        continue;
      }
      for (const { result, part } of kept?.results ?? []) this.clientOut.push(client.key, client.routingId, { ...result, id: as, total }, part);
      for (const hubId of running) this.tasks.reassign(hubId, client.routingId, client.key, as);
      if (running.length) this.adoptedTotals.set(`${client.key}:${as}`, total);
    }
  }

  /** Results still to come for adopted tasks carry the number to expect. */
  private readonly adoptedTotals = new Map<string, number>();

  /**
   * Cancels tasks by controller id: queued ones fail at once, the others are cancelled by their
   * engines (with `queuedOnly`, only those that have not started there).
   */
  private cancel(hubIds: number[], queuedOnly = false): void {
    const ids = new Set(hubIds);
    const err = new TaskCancelledError("The task was cancelled before it started.");
    for (const rec of this.lb.remove((r) => ids.has(r.hubId))) {
      this.tasks.take(rec.hubId);
      this.failTask(rec, err.code, err.message);
    }
    const perEngine = new Map<number, number[]>();
    for (const id of ids) {
      const rec = this.tasks.get(id);
      if (!rec || rec.engine < 0) continue;
      // The engine may hand it back (a release crossing this cancel) instead of reporting it:
      // then it fails as cancelled rather than running elsewhere.
      if (!queuedOnly) rec.cancelled = true;
      let list = perEngine.get(rec.engine);
      if (!list) perEngine.set(rec.engine, (list = []));
      list.push(id);
    }
    for (const [engineId, list] of perEngine) {
      const e = this.engines.get(engineId);
      this.log.debug({ engineId, ids: list, queuedOnly }, "cancel sent to engine");
      if (e) this.engineCh.send({ type: "engine_cancel", ids: list, ...(queuedOnly ? { queuedOnly } : {}) }, undefined, e.routingId);
    }
  }

  private onSubmit(client: ClientEntry, tasks: ClientTask[], parts: Part[]): void {
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i] as ClientTask;
      const part = parts[i] ?? EMPTY_PART;
      // The client sends a source once and names it by hash from then on: it holds the source
      // until it goes. (Stored under its own hash only: no client can change what another's hash runs.)
      if (t.fn && t.src !== undefined && !client.knownFns.has(t.fn) && this.fnSources.offer(t.fn, t.src)) client.knownFns.add(t.fn);
      if (t.lb) {
        const spec = t.lb;
        const rec = this.tasks.add(client.routingId, client.key, t.id, -1, {
          task: t, part, attempts: 0, deaths: 0, retriesLeft: spec.retries ?? 0, maxDeaths: spec.maxDeaths ?? 3,
          targets: spec.targets ? new Set(spec.targets) : undefined, failedOn: undefined,
        }, t);
        if (spec.targets && !spec.targets.some((id) => this.engines.get(id))) {
          // Targets that do not exist now may register later; the task waits for them in the queue.
          this.log.debug({ targets: spec.targets }, "load-balanced task waits for its target engines");
        }
        this.lb.submit(rec);
        continue;
      }
      for (const target of t.to) {
        const engine = this.engines.get(target);
        const rec = this.tasks.add(client.routingId, client.key, t.id, target, undefined, t);
        if (!engine) {
          const err = new UnknownEngineError(target, this.engines.ids());
          this.tasks.take(rec.hubId);
          this.failTask(rec, err.code, err.message);
          continue;
        }
        this.sendTask(engine, rec, t, part, false);
      }
    }
  }

  private sendTask(engine: EngineEntry, rec: TaskRecord, t: ClientTask, part: Part, movable: boolean): void {
    const task: EngineTask = { id: rec.hubId, op: t.op };
    if (movable) task.movable = true;
    if (t.timeout !== undefined) task.timeout = t.timeout;
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

  /** What `rc.status()` answers. */
  private statusReport(): unknown {
    const mem = process.memoryUsage();
    return {
      // The controller's clock: `since` of running tasks counts from it.
      time: Date.now(), pid: process.pid, profile: this.paths.profile, clusterId: this.opts.clusterId ?? "", ports: this.ports,
      engines: [...this.engines.all()].map((e) => ({ ...e.info, running: e.inflight.size, ...engineActivity(e, this.tasks), ...(e.link ? { link: e.link } : {}) })),
      clients: this.clients.size, tasksInFlight: this.tasks.size, unassigned: this.lb.queued,
      // Messages refused (bad tag, failed authentication, duplicates and replays, malformed), per socket.
      dropped: { client: { ...this.clientCh.stats.dropped }, engine: { ...this.engineCh.stats.dropped } },
      messages: {
        client: { received: this.clientCh.stats.received, sent: this.clientCh.stats.sent, retransmitted: this.clientCh.stats.retransmitted },
        engine: { received: this.engineCh.stats.received, sent: this.engineCh.stats.sent, retransmitted: this.engineCh.stats.retransmitted },
      },
      // Only while fault injection (PTCLUSTER_TEST_FAULTS) is on: what it did to this controller's sends.
      ...(this.clientCh.stats.faults && this.engineCh.stats.faults
        ? { faults: { client: { ...this.clientCh.stats.faults }, engine: { ...this.engineCh.stats.faults } } }
        : {}),
      // Where to look when something went wrong: the profile's log directory and this controller's log.
      log: { dir: this.paths.logDir, ...(this.opts.logFile ? { file: this.opts.logFile } : {}) },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers },
      // What the controller holds on behalf of clients and engines: all of it goes when they do
      // (sessions excepted: bounded, they keep old messages from being replayed).
      retained: {
        tasks: this.tasks.size, results: this.store.size, resultBytes: this.store.bytes, functions: this.fnSources.size,
        clientLinks: this.clientCh.linkCount, engineLinks: this.engineCh.linkCount, sessions: this.clientCh.sessionCount + this.engineCh.sessionCount,
      },
    };
  }

  private onRequest(client: ClientEntry, rid: number, req: Extract<ClientToHub, { type: "request" }>["req"]): void {
    const reply = (data: unknown) => this.clientCh.send({ type: "reply", rid, ok: true, data }, undefined, client.routingId);
    switch (req.what) {
      case "status":
        // With `gc`, after a full collection (twice, around the finalizers of freed buffers).
        if (req.gc) void collectGarbage().then(() => reply(this.statusReport()), () => reply(this.statusReport()));
        else reply(this.statusReport());
        break;
      case "queue_status": {
        const engines: Record<string, { queued: number; running: number; completed: number }> = {};
        for (const e of this.engines.all()) {
          const running = Math.min(e.inflight.size, e.info.concurrency);
          engines[e.info.id] = { queued: e.inflight.size - running, running, completed: e.info.tasksDone };
        }
        reply({ engines, unassigned: this.lb.queued });
        break;
      }
      case "launch": {
        const launch = this.opts.launch;
        const fail = (code: string, message: string) => this.clientCh.send({ type: "reply", rid, ok: false, error: { code, message } }, undefined, client.routingId);
        if (!launch) {
          fail("ERR_PTC_NO_LAUNCHER", "This controller runs without launchers (`ptcluster hub`): start engines with `ptcluster engine --file …` on each host.");
          break;
        }
        if (!Number.isInteger(req.n) || req.n < 1 || req.n > 10_000) {
          fail("ERR_PTC_INVALID_OPTION", `Expected \`n\` to be a positive integer, got \`${String(req.n)}\``);
          break;
        }
        launch({ n: req.n, launcher: String(req.launcher), options: req.options && typeof req.options === "object" ? req.options : {} }).then(
          (data) => {
            reply(data);
            this.scheduleFlush();
          },
          (err: Error & { code?: string }) => {
            fail(err.code ?? "ERR_PTC_START", err.message);
            this.scheduleFlush();
          },
        );
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
    // After the poll phase: everything received in this turn is handled first, then each peer
    // gets one message (a burst of results from an engine becomes one message to its client).
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.forgottenFns.length) {
        // Ahead of the tasks in the same ordered stream: a task that brings a dropped source back
        // (it carries the source again) reaches the engine after the engine forgot the old copy.
        const fns = this.forgottenFns;
        this.forgottenFns = [];
        for (const e of this.engines.all()) this.engineCh.send({ type: "forget_fns", fns }, undefined, e.routingId);
      }
      this.engineOut.flush((to, tasks, parts) => this.engineCh.send({ type: "tasks", tasks, pf: parts.map((p) => p.frames.length) }, parts, to));
      this.clientOut.flush((to, results, parts) => this.clientCh.send({ type: "results", results, pf: parts.map((p) => p.frames.length) }, parts, to));
    });
  }

  private onTick(): void {
    const now = Date.now();
    // A late tick means this event loop was blocked (a huge message, a busy machine): timers run
    // before the sockets are read, so heartbeats and acknowledgements that arrived meanwhile are
    // still unread. Judge no peer on this tick; the next one sees them.
    const stalled = now - this.lastTick > 2 * this.hbMs;
    this.lastTick = now;
    if (!stalled) this.judgePeers(now);
    for (const e of this.engines.all()) this.engineCh.send({ type: "heartbeat", t: now }, undefined, e.routingId);
    this.store.purge(now);
    this.notifyCh.send({ type: "tick", t: now, engines: this.engines.size });
    this.scheduleFlush();
  }

  /** Declares dead the engines and clients that went silent or stopped acknowledging. */
  private judgePeers(now: number): void {
    const deadMs = this.hbMs * this.misses;
    for (const e of this.engines.silentSince(now - deadMs)) {
      this.engineGone(e.info.id, `missed ${this.misses} heartbeats`);
    }
    // A peer that talks but does not acknowledge what we send it (its half of the link is cut,
    // or it is broken) is as dead as a silent one: its work would wait for ever. Twice the
    // heartbeat window, as a message lost several times over is resent within it.
    const ackDeadMs = 2 * deadMs;
    for (const peer of this.engineCh.overdue(ackDeadMs)) {
      const e = peer && this.engines.byRoutingId(peer);
      if (e) this.engineGone(e.info.id, `did not acknowledge messages for ${ackDeadMs} ms`);
      else this.engineCh.forget(peer);
    }
    const clientTimeoutMs = this.opts.clientTimeoutMs ?? 30_000;
    const clientDeadline = now - clientTimeoutMs;
    for (const c of [...this.clients.values()]) if (c.lastSeen < clientDeadline) this.clientGone(c.key, "silent");
    for (const peer of this.clientCh.overdue(clientTimeoutMs)) {
      const key = peer?.toString("latin1") ?? "";
      if (this.clients.has(key)) this.clientGone(key, `did not acknowledge messages for ${clientTimeoutMs} ms`);
      else this.clientCh.forget(peer);
    }
  }

  /**
   * The process of a local engine exited (its launcher saw it): declare it dead now rather than
   * after missed heartbeats.
   */
  engineProcessExited(pid: number, how: string): void {
    for (const e of this.engines.all()) {
      if (e.info.pid === pid) {
        this.engineGone(e.info.id, `process exited (${how})`);
        this.scheduleFlush();
        return;
      }
    }
  }

  /**
   * A launch's processes ended (a launcher saw its ssh, mpiexec or batch job exit): every engine
   * registered under `tag` is gone, without waiting for missed heartbeats.
   */
  launchExited(tag: string, how: string): void {
    let any = false;
    for (const e of [...this.engines.all()]) {
      if (e.info.tag !== tag) continue;
      this.engineGone(e.info.id, `launch ended (${how})`);
      any = true;
    }
    if (any) this.scheduleFlush();
  }

  /** The first engine id above every id given out so far: launchers whose engines ask for ids (MPI ranks) start there. */
  freshIdBase(): number {
    return this.engines.freshIdBase();
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
    await this.zap?.close();
    this.state = "stopped";
    this.stopResolve();
  }
}
