import { EventEmitter } from "node:events";
import {
  ClientClosedError,
  HubLostError,
  InvalidOptionError,
  NoEnginesError,
  profilePaths,
  readConnectionFile,
  silentLogger,
  type ConnectionInfo,
  type EngineInfo,
  type LinkReport,
  type Logger,
  type SharedNamespace,
} from "@ptcluster/protocol";
import { DirectView } from "./views/direct-view.js";
import { EngineView } from "./views/engine-view.js";
import { LoadBalancedView } from "./views/load-balanced-view.js";
import { pipelineOf, type Pipeline } from "./pipeline/pipeline.js";
import type { PipelineOptions } from "./pipeline/options.js";
import { validateConnectOptions, validateTargets, type ConnectOptions } from "./options.js";
import type { AsyncResult } from "./results/async-result.js";
import { adoptedResult } from "./results/adopted-result.js";
import { Session, type ClientState } from "./session/session.js";
import type { ClientEvents } from "./session/client-events.js";
import type {
  AbortSelector,
  AbortSummary,
  Abortable,
  AddEnginesOptions,
  ClusterStatus,
  QueueStatus,
} from "./client-types.js";
import { abortRequest, splitAbortTargets } from "./session/abort-targets.js";

export type { ClientState } from "./session/session.js";
export type { ClientEvents } from "./session/client-events.js";
export type * from "./client-types.js";

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
  /** The connection file this client used. */
  readonly connection: ConnectionInfo;
  // The connection itself: channels, pending tasks and requests, the roster, liveness.
  readonly #session: Session;

  // Private: the public types offer no constructor (clients come from `connect()`).
  private constructor(connection: ConnectionInfo, logger: Logger) {
    super();
    this.connection = connection;
    this.#session = new Session(connection, logger, this);
  }

  /** This client's id, the first half of its tasks' `msgIds` (a new one after `reconnected`). */
  get id(): string {
    return this.#session.id;
  }

  /** @internal How `connect` makes one (stripped from the public types). */
  static async open(
    connection: ConnectionInfo,
    logger: Logger,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Client> {
    const client = new Client(connection, logger);
    await client.#session.open(timeoutMs, signal);
    return client;
  }

  /**
   * `connecting`, `connected`, `closed`, or `hub-lost` once the controller was judged gone (it
   * answers no more): then calls fail with `HubLostError` until it answers again, when the client
   * connects again by itself (`reconnected`) and is `connected`.
   */
  get state(): ClientState {
    return this.#session.state;
  }

  /** Engine ids, sorted, kept current as engines come and go. */
  get ids(): number[] {
    return this.#session.ids;
  }

  /** What the controller said about each engine when it registered. */
  engineInfo(id: number): EngineInfo | undefined {
    return this.#session.engineInfo(id);
  }

  /** Largest message this cluster accepts (bytes). */
  get maxMessageBytes(): number {
    return this.#session.maxMessageBytes;
  }

  /**
   * A DirectView on `targets` (default: every engine, re-evaluated at each call, so engines that
   * join later are included).
   */
  view(targets?: readonly number[]): DirectView {
    return DirectView.create(this.#session, validateTargets("view", targets));
  }

  /** A view on one engine: results are single values rather than one per engine. */
  engine(id: number): EngineView {
    return EngineView.create(this.#session, id);
  }

  /** A load-balanced view: each task runs on whichever engine (of `targets`, default all) is free. */
  loadBalancedView(targets?: readonly number[]): LoadBalancedView {
    return LoadBalancedView.create(this.#session, validateTargets("loadBalancedView", targets));
  }

  /**
   * Streams `items` (an array, an iterable or an async iterable, read lazily) through stages run
   * on the engines: add them with `.map(fn)`, `.filter(fn)`, `.flatMap(fn)`, then iterate the
   * pipeline (`for await`) or `await p.toArray()`. Only the last stage's outputs come back here.
   * See docs/pipelines.md.
   */
  pipeline<T>(items: Iterable<T> | AsyncIterable<T>, options?: PipelineOptions): Pipeline<T> {
    return pipelineOf<T>(this.#session, items, options);
  }

  /** Waits until at least `n` engines are registered (default: those already known, at least 1). */
  async waitForEngines(
    n = Math.max(1, this.#session.roster.size),
    options: { timeout?: number } = {},
  ): Promise<number[]> {
    const roster = this.#session.roster;
    if (roster.size >= n) return this.ids;
    const timeoutMs = options.timeout ?? 30_000;
    const unhold = this.#session.work.holdWhileWaiting();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (roster.size >= n) {
          cleanup();
          resolve(this.ids);
        }
      };
      const fail = (err: Error) => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(
            new NoEnginesError(
              `Only ${roster.size} of ${n} engines registered within ${timeoutMs} ms. Check the engines' logs under ${profilePaths(this.connection.profile, this.connection.clusterId).logDir}.`,
            ),
          ),
        timeoutMs,
      );
      const onLost = (e: HubLostError) => fail(e);
      const cleanup = () => {
        unhold();
        clearTimeout(timer);
        this.off("engine_up", check);
        this.off("hub_lost", onLost);
      };
      this.on("engine_up", check);
      this.on("hub_lost", onLost);
    });
  }

  /** Waits for every result to finish (successfully or not); true if all did within `timeout` ms. */
  async wait(
    results: Iterable<AsyncResult<unknown> | PromiseLike<unknown>>,
    options: { timeout?: number } = {},
  ): Promise<boolean> {
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

  /**
   * Named objects held by the controller, shared by every client and engine of the cluster (in
   * shipped code: `engine.shared`): `dict`, `queue`, `counter`, `array`, `lock`, `semaphore`,
   * `event`, `barrier`. See docs/shared-state.md.
   */
  get shared(): SharedNamespace {
    return this.#session.shared;
  }

  /** Per-engine counts of queued, running and completed tasks, and load-balanced tasks not yet placed. */
  queueStatus(): Promise<QueueStatus> {
    return this.#session.request({ what: "queue_status" }) as Promise<QueueStatus>;
  }

  /**
   * Cancels work: the given results, task ids of this client (`ar.taskIds`) or msg ids of any
   * client (`ar.msgIds`), or, with no argument, every pending task and running pipeline of this client. Queued tasks
   * are dropped; running ones see `engine.signal` abort, and are stopped by force after a grace
   * period. Each cancelled result rejects with `TaskCancelledError` (in the client that submitted it).
   *
   * With a selector, `rc.abort({ tasks, engines, all })`, it cancels tasks of any client (by msg id,
   * every task queued or running on `engines`, or `all` of them) and resolves to what the
   * controller cancelled: `{ running, queued, engines }`.
   */
  abort(results?: Abortable | number | string | Iterable<Abortable | number | string>): void;
  abort(selector: AbortSelector): Promise<AbortSummary>;
  abort(
    target?: Abortable | number | string | Iterable<Abortable | number | string> | AbortSelector,
  ): void | Promise<AbortSummary> {
    const s = this.#session;
    if (target === undefined) {
      s.cancel(s.work.taskIds());
      s.work.pipes.abortAll("rc.abort()");
      return;
    }
    const split = splitAbortTargets(target);
    if (split.kind === "selector") {
      // A closed client rejects (with `ClientClosedError`) rather than throws: the caller awaits.
      try {
        return s.request(abortRequest(split.selector)) as Promise<AbortSummary>;
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    for (const r of split.results) r.abort();
    s.cancel(split.ids.filter((id) => s.work.sinks.has(id)));
    // Tasks named by msg id may be another client's: the controller finds them (nothing to do once closed, as for ids).
    if (split.msgIds.length && s.state === "connected")
      void s.request(abortRequest({ tasks: split.msgIds })).catch(() => undefined);
  }

  /**
   * The result of a task another client submitted and then went away from (`ar.msgIds`), while the
   * controller keeps it (`--result-ttl`, default 10 minutes). Resolves to the value, or to one value
   * per engine for a task sent to several; rejects with the task's error, or `UnknownTaskError`.
   */
  getResult(msgId: string): AsyncResult<unknown> {
    return adoptedResult(this.#session, msgId);
  }

  /**
   * The controller's view of the cluster: engines (id, pid, host, state, tasks done), clients,
   * tasks in flight, how many messages it refused on each socket, its memory and what it keeps.
   * With `gc: true` the controller runs a full garbage collection first (a pause of a few
   * milliseconds per 100 MB of heap), so `memory.heapUsed` is what is live: for leak checks.
   */
  status(options: { gc?: boolean } = {}): Promise<ClusterStatus> {
    return this.#session.request({ what: "status", ...(options.gc ? { gc: true } : {}) }) as Promise<ClusterStatus>;
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
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidOptionError(`Expected \`n\` to be a positive integer, got \`${String(n)}\``);
    return (await this.#session.request(
      { what: "launch", n, launcher, options: { ...rest, timeout } },
      timeout + 5_000,
    )) as { ids: number[] };
  }

  /**
   * This client's link to the controller: messages sent, received, sent again for want of an
   * acknowledgement, and refused (by reason); bytes sent and received (every frame: what a
   * pipeline's intermediate values do not add); `faults` while fault injection is on.
   */
  connectionStats(): LinkReport {
    return this.#session.stats();
  }

  /** Stops the whole cluster (engines and controller), then closes this client. */
  async shutdown(): Promise<void> {
    this.#session.assertOpen();
    try {
      await this.#session.request({ what: "shutdown" });
    } catch (err) {
      // The controller's notice that it stops travels on another socket than its reply and can be
      // read first (one run in three under load): the cluster is stopping, as asked.
      if (!(err instanceof HubLostError && err.notice !== undefined)) throw err;
    }
    await this.#session.close(new HubLostError("The cluster was shut down by this client."), false);
    this.emit("close");
  }

  /** Closes the connection; pending results reject with `ClientClosedError`. The cluster keeps running. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    await this.#session.close(new ClientClosedError(), true);
    this.emit("close");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
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
  return Client.open(info, o.logger ?? silentLogger(), o.timeout, o.signal);
}
