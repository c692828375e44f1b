import { EventEmitter } from "node:events";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  type Channel,
  profilePaths,
  type ClientToHub,
  type EngineInfo,
  type EngineToHub,
  type HubToClient,
  type HubToEngine,
  type Incoming,
  type Logger,
  type Notification,
  type Part,
  type ProfilePaths,
} from "@ptcluster/protocol";
import { abortTasks } from "./clients/abort-request.js";
import type { RequestDeps } from "./clients/requests.js";
import { routeClientMessage, type ClientRoutes } from "./clients/client-messages.js";
import { ClientSessions, connectReply, versionMismatch } from "./clients/sessions.js";
import { queueStatus, statusReport, type StatusSources } from "./clients/status-report.js";
import { CommRelay } from "./engines/comm-relay.js";
import { routeEngineMessage, type EngineRoutes } from "./engines/engine-messages.js";
import { EngineRegistry, type EngineEntry } from "./engines/engine-registry.js";
import { LivenessMonitor } from "./engines/liveness.js";
import { nativeCrash } from "./engines/native-crash.js";
import { EngineRegistration } from "./engines/registration.js";
import { removeConnectionFiles, writeConnectionFiles } from "./networking/connection-files.js";
import { ShmFolder } from "./networking/shm-folder.js";
import { OutgoingBatches } from "./networking/outgoing.js";
import { bindSockets } from "./networking/sockets.js";
import { openChannels } from "./networking/channels.js";
import type { ZapHandler } from "./networking/zap-handler.js";
import { ResultDelivery } from "./results/delivery.js";
import { ResultStore } from "./results/result-store.js";
import { Scheduler } from "./schedulers/scheduler.js";
import { FunctionShipping } from "./tasks/function-shipping.js";
import type { TaskCoordinator } from "./tasks/task-coordinator.js";
import type { CutThrough } from "./tasks/cut-through.js";
import { taskRouting } from "./tasks/task-routing.js";
import { TaskTable } from "./tasks/task-table.js";
import { DEFAULT_MAX_SHARED_BYTES, type HubOptions } from "./options.js";
import { SharedState } from "./shared-state/service.js";
import { Pipelines } from "./pipelines/pipeline-service.js";

import type { HubEvents, HubState } from "./hub-state.js";

export type { HubEvents, HubState };

/**
 * The controller: engine registry and heartbeats, routing of tasks to engines and of results back
 * to the client that submitted them, and notifications. It routes by message headers alone:
 * task bodies and binary frames are forwarded without being decoded.
 *
 * This class only wires the parts together (docs/architecture.md): engines/ (registration,
 * registry, liveness), clients/ (sessions, requests, status), tasks/ (records, states, the
 * coordinator that carries out scheduling decisions, function shipping), schedulers/ (behind a
 * port of events and decisions), results/ (delivery and the store) and networking/.
 */
export class Hub extends EventEmitter<HubEvents> {
  state: HubState = "starting";
  readonly paths: ProfilePaths;
  private readonly engines = new EngineRegistry();
  private readonly clients = new ClientSessions();
  private readonly shipping = new FunctionShipping(this.engines, () => this.out.schedule());
  private readonly tasks = new TaskTable(this.shipping.sources);
  private readonly scheduler: Scheduler;
  private readonly store: ResultStore;
  private readonly out = new OutgoingBatches({
    forgotten: () => this.shipping.takeForgotten(),
    engines: () => this.engines.all(),
    engineCh: () => this.engineCh,
    clientCh: () => this.clientCh,
  });
  private readonly delivery: ResultDelivery;
  private readonly coordinator: TaskCoordinator;
  private readonly registration: EngineRegistration;
  private readonly liveness: LivenessMonitor;
  private readonly requests: RequestDeps;
  private readonly shared: SharedState;
  private readonly pipelines: Pipelines;
  private readonly routes: ClientRoutes;
  private readonly engineRoutes: EngineRoutes;
  private readonly cutThrough: CutThrough;
  private readonly comm = new CommRelay(this.engines, (m, p, to) => this.engineCh.send(m, p, to));
  private engineCh!: Channel<EngineToHub, HubToEngine>;
  private clientCh!: Channel<ClientToHub, HubToClient>;
  private notifyCh!: Channel<never, Notification>;
  private timer: NodeJS.Timeout | undefined;
  private shm: ShmFolder | undefined;
  private zap: ZapHandler | undefined;
  private readonly hbMs: number;
  private readonly log: Logger;
  private stopResolve!: () => void;
  /** Resolves when the hub has stopped. */
  readonly stopped: Promise<void>;
  ports = { client: 0, engine: 0, notify: 0 };

  constructor(private readonly opts: HubOptions) {
    super();
    this.paths = profilePaths(opts.profile, opts.clusterId);
    this.hbMs = opts.heartbeatMs ?? 500;
    this.log = opts.logger.child({ component: "hub" });
    this.stopped = new Promise((r) => (this.stopResolve = r));
    this.store = new ResultStore(opts.resultTtlMs ?? 600_000);
    this.scheduler = new Scheduler(opts.scheme ?? "leastload");
    this.delivery = new ResultDelivery(this.tasks, this.store, this.out.toClients, (key) => this.clients.has(key));
    const { engines, tasks, scheduler, delivery, shipping, log } = this;
    const toEngine = (msg: HubToEngine, to: Buffer) => void this.engineCh.send(msg, undefined, to);
    const [engineOut, flush] = [this.out.toEngines, () => this.out.schedule()];
    ({ coordinator: this.coordinator, cutThrough: this.cutThrough } = taskRouting(
      { tasks, engines, scheduler, delivery, shipping, engineOut, toEngine, flush, log },
      { client: (key) => this.clients.get(key), engineCh: () => this.engineCh, clientCh: () => this.clientCh },
    ));
    const coordinator = this.coordinator;
    this.registration = new EngineRegistration({
      engines,
      heartbeatMs: this.hbMs,
      toEngine,
      log,
      up: (e) => this.engineUp(e),
      gone: (id, reason) => this.engineGone(id, reason),
    });
    this.liveness = new LivenessMonitor(
      {
        heartbeatMs: this.hbMs,
        missedHeartbeats: opts.missedHeartbeats ?? 6,
        clientTimeoutMs: opts.clientTimeoutMs ?? 30_000,
      },
      {
        engines,
        toEngine,
        engineLinks: { overdue: (ms) => this.engineCh.overdue(ms), forget: (peer) => this.engineCh.forget(peer) },
        clientLinks: { overdue: (ms) => this.clientCh.overdue(ms), forget: (peer) => this.clientCh.forget(peer) },
        clients: () => this.clients.all(),
        hasClient: (key) => this.clients.has(key),
        engineGone: (id, reason) => this.engineGone(id, reason),
        clientGone: (key, reason) => this.clientGone(key, reason, true),
      },
    );
    this.shared = new SharedState(opts.maxSharedBytes ?? DEFAULT_MAX_SHARED_BYTES, {
      reply: (kind, msg, parts, to) =>
        void (kind === "client" ? this.clientCh.send(msg, parts, to) : this.engineCh.send(msg, parts, to)),
      log,
    });
    const toClient = (msg: HubToClient, parts: Part[] | undefined, to: Buffer) =>
      void this.clientCh.send(msg, parts, to);
    this.pipelines = new Pipelines({ coordinator, shipping, engines, toClient, log });
    this.requests = {
      toClient: (msg, to) => toClient(msg, undefined, to),
      status: () => statusReport(this.statusSources()),
      queueStatus: () => queueStatus(this.statusSources()),
      launch: opts.launch,
      flush: () => this.out.schedule(),
      shutdown: () => void this.clientCh.drained().then(() => this.stop("shutdown requested by a client")),
      abort: abortTasks(this.tasks, this.engines, (ids) => this.coordinator.cancel(ids), this.log),
    };
    const { requests, shared, pipelines } = this;
    const bye = (key: string) => this.clientGone(key, "said bye");
    this.routes = { coordinator, tasks, requests, shared, delivery, pipelines, bye };
    this.engineRoutes = {
      engines,
      registration: this.registration,
      coordinator,
      shared,
      comm: this.comm,
      gone: (id, reason) => this.engineGone(id, reason),
      reset: (id, reason) => this.notifyCh.send({ type: "engine_reset", id, reason }),
    };
  }

  /** Binds the sockets, writes the connection files and starts serving. */
  async start(): Promise<void> {
    const ip = this.opts.ip ?? "127.0.0.1";
    const key = this.opts.key;
    const maxMessageBytes = this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const sockets = await bindSockets(
      { ip, ports: this.opts.ports ?? {}, maxMessageBytes, curve: this.opts.curve },
      this.log,
    );
    this.zap = sockets.zap;
    this.ports = sockets.ports;
    ({
      clientCh: this.clientCh,
      engineCh: this.engineCh,
      notifyCh: this.notifyCh,
    } = openChannels(sockets, key, this.log, {
      client: (m) => this.onClientMessage(m),
      engine: (m) => this.onEngineMessage(m),
      clientStream: (s) => this.cutThrough.fromClient(s),
      engineStream: (s) => this.cutThrough.fromEngine(s),
    }));
    this.shm = new ShmFolder(this.paths, this.opts.shmThreshold ?? 0, key, this.log);
    const shm = this.shm;
    this.store.ownBytes = (clientKey, part) => shm.keepBytes(clientKey, part);
    const location = writeConnectionFiles({
      shm: this.shm.advert,
      paths: this.paths,
      clusterId: this.opts.clusterId ?? "",
      ip,
      location: this.opts.location,
      key,
      maxMessageBytes,
      ports: this.ports,
      curve: this.opts.curve,
    });
    this.liveness.reset();
    this.timer = setInterval(() => this.onTick(), this.hbMs);
    this.state = "running";
    this.log.info({ ports: this.ports, ip, location }, "controller running");
  }

  // ---- engines ------------------------------------------------------------------------------

  private onEngineMessage({ from, header, parts }: Incoming<EngineToHub>): void {
    if (!from) return;
    routeEngineMessage(this.engineRoutes, from, header, parts);
    this.out.schedule();
  }

  private engineUp(entry: EngineEntry): void {
    this.notifyCh.send({ type: "engine_up", engine: entry.info });
    this.emit("engine_up", entry.info);
    this.coordinator.engineUp(entry);
    this.comm.engineUp(entry.info.id);
  }

  /** An engine is dead or left: its tasks move or fail, everyone is told. */
  private engineGone(id: number, reason: string, crashed?: string): void {
    const entry = this.engines.remove(id);
    if (!entry) return;
    this.log.warn({ engineId: id, reason, inflight: entry.inflight.size }, "engine gone");
    // Stopping, the engines' `engine_shutdown` still has to reach them.
    if (this.state === "running") this.engineCh.forget(entry.routingId);
    this.coordinator.engineDown(entry, crashed);
    this.shared.engineGone(id);
    if (this.state === "running") this.comm.engineGone(id, reason);
    this.notifyCh.send({ type: "engine_down", id, reason });
    this.emit("engine_down", { id, reason });
    this.reclaimShm();
  }

  // ---- clients ------------------------------------------------------------------------------

  private onClientMessage({ from, header, parts }: Incoming<ClientToHub>): void {
    if (!from) return;
    const key = from.toString("latin1");
    const client = this.clients.get(key);
    if (client) client.lastSeen = Date.now();
    if (header.type === "connect") {
      const engines = [...this.engines.all()].map((e) => e.info);
      const refused = versionMismatch(header.v, header.pkg);
      if (refused) {
        this.clientCh.send(connectReply(this.opts.clusterId ?? "", this.hbMs, engines, refused), undefined, from);
        return;
      }
      if (client) this.shipping.releaseClient(client);
      // A process that lost this controller and connected again under a new id: its old session
      // (running tasks, held locks) ends now, as a vanished client's would at `--client-timeout`.
      const old = header.replaces === undefined ? undefined : this.clients.get(header.replaces);
      if (old && old.key !== key && old.pid === header.pid && old.host === header.host)
        this.clientGone(old.key, "it connected again under a new id", true);
      this.clients.open(from, key, { pid: header.pid, host: header.host });
      this.clientCh.send(connectReply(this.opts.clusterId ?? "", this.hbMs, engines), undefined, from);
      return;
    }
    // A goodbye from a client the controller no longer knows still ends what is left of it.
    if (client) routeClientMessage(this.routes, client, header, parts);
    else if (header.type === "bye") this.clientGone(key, "said bye");
    else this.clients.tellRejoin(key, this.hbMs, (notice) => this.clientCh.send(notice, undefined, from));
    this.out.schedule();
  }

  /**
   * A client left. One that said goodbye keeps its running tasks going (their results are kept a
   * while for `rc.getResult`), only those not started are cancelled; one that vanished (silent, or
   * not acknowledging, past `--client-timeout`) has all of them cancelled, running ones too, so its
   * engines serve others again. Results already made are kept either way.
   */
  private clientGone(key: string, reason: string, vanished = false): void {
    const client = this.clients.close(key, vanished ? reason : undefined);
    if (client) this.delivery.keepUnacknowledged(key, this.clientCh.forget(client.routingId));
    // A pipeline's tasks are cancelled, running ones too: their results could go nowhere.
    this.pipelines.clientGone(key);
    const ids = this.tasks.allOf(key);
    if (ids.length) this.log.info({ tasks: ids.length, reason, vanished }, "client gone; cancelling its tasks");
    this.coordinator.cancel(ids, !vanished);
    this.shared.clientGone(key);
    if (client) this.shipping.releaseClient(client);
    this.reclaimShm();
  }

  /** Shared-memory files written by or for clients and engines that are gone go. */
  private reclaimShm(): void {
    this.shm?.reclaim(
      (id) => this.engines.get(id) !== undefined,
      (key) => this.clients.has(key),
    );
  }

  private statusSources(): StatusSources {
    return {
      paths: this.paths,
      clusterId: this.opts.clusterId ?? "",
      ports: this.ports,
      logFile: this.opts.logFile,
      engines: this.engines,
      tasks: this.tasks,
      unassigned: () => this.scheduler.queued,
      store: this.store,
      functions: () => this.shipping.sources.size,
      clients: () => this.clients.size,
      clientCh: this.clientCh,
      engineCh: this.engineCh,
      shared: this.shared.store,
      pipelines: this.pipelines,
      cutThrough: this.cutThrough.counts,
    };
  }

  // ---- housekeeping ---------------------------------------------------------------------------

  private onTick(): void {
    const now = Date.now();
    this.liveness.tick(now);
    this.store.purge(now);
    this.pipelines.tick(now);
    this.reclaimShm();
    this.notifyCh.send({ type: "tick", t: now, engines: this.engines.size });
    this.out.schedule();
  }

  /**
   * A launch's processes ended (a launcher saw its ssh, mpiexec or batch job exit): every engine
   * registered under `tag` is gone, without waiting for missed heartbeats.
   */
  launchExited(tag: string, how: string): void {
    const ended = [...this.engines.all()].filter((e) => e.info.tag === tag);
    const crashed = nativeCrash(how, ended.length);
    for (const e of ended) this.engineGone(e.info.id, `launch ended (${how})`, crashed);
    if (ended.length > 0) this.out.schedule();
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
    this.out.schedule();
    await new Promise((r) => setImmediate(r));
    removeConnectionFiles(this.paths);
    this.shm?.close();
    await Promise.all([this.engineCh.close(300), this.clientCh.close(300), this.notifyCh.close(100)]);
    await this.zap?.close();
    this.state = "stopped";
    this.stopResolve();
  }
}
