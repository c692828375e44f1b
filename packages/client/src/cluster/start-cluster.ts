import { randomBytes } from "node:crypto";
import {
  CONTROLLER_ENTRY,
  ClusterStartError,
  MissingPeerError,
  startValuesFrom,
  type ClusterApiOptions,
  type ControllerEntry,
} from "@ptcluster/protocol";
import { connect, type Client } from "../client.js";
import type { ConnectOptions } from "../options.js";

/**
 * Options of {@link startCluster}: the options of `ptcluster start` it takes, by their camelCase
 * names (`n`, `profile`, `clusterId`, `concurrency`, `timeout` in ms, `scheme`, `restart`, `force`,
 * `maxMemory` in MB, `maxMessageMb`, `maxSharedMb`), from the one table of the cluster's options
 * (`CLUSTER_OPTIONS` in `@ptcluster/protocol`), with the same defaults and checks as the flags;
 * `ptcluster start --help` describes each. One difference: `clusterId` defaults to a new random
 * id, so a started cluster never collides with another of its profile.
 *
 * And one option of its own, `detached` (default `false`): whether the cluster outlives this
 * process. By default the controller ends with the process that started it, however that process
 * ends (its last line, `process.exit()`, an uncaught error or unhandled rejection, SIGINT, SIGTERM,
 * even SIGKILL), and stops its engines: its stdin is a pipe this process holds, and its end is
 * the signal. No signal handler is installed, so exit codes, signals and the user's own handlers
 * behave as without a cluster. With `detached: true` the cluster runs until `cluster.stop()`
 * (or `await using`) or `ptcluster stop`.
 */
export type StartClusterOptions = ClusterApiOptions;

/**
 * The entry point of `@ptcluster/cli` that runs controllers. Imported by name at run time, not
 * statically: the cli depends on this package, so it is an optional peer dependency here.
 */
async function controllerEntry(): Promise<ControllerEntry> {
  const peer = "@ptcluster/cli";
  const install = `Install it next to @ptcluster/client (\`npm install ${peer}\`), or start the cluster with \`ptcluster start\` and \`connect()\` to it.`;
  let mod: Partial<ControllerEntry>;
  try {
    mod = (await import(CONTROLLER_ENTRY)) as Partial<ControllerEntry>;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // Only the entry itself missing is "not installed" (Node names it first: "Cannot find package
    // '@ptcluster/cli' imported from …"); a dependency of it missing is reported as it is.
    const missing =
      code === "ERR_MODULE_NOT_FOUND" &&
      /^Cannot find (package|module) '[^']*@ptcluster\/cli['/]/.test(String((err as Error).message));
    if (missing)
      throw new MissingPeerError(
        peer,
        `startCluster() starts controllers with ${peer} (${CONTROLLER_ENTRY}), which is not installed. ${install}`,
        { cause: err },
      );
    if (code === "ERR_PACKAGE_PATH_NOT_EXPORTED")
      throw new MissingPeerError(
        peer,
        `startCluster() needs ${CONTROLLER_ENTRY}; the installed ${peer} is too old to have it. ${install}`,
        { cause: err },
      );
    throw new ClusterStartError(`startCluster() could not load ${CONTROLLER_ENTRY}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof mod.startController !== "function" || typeof mod.stopController !== "function") {
    throw new MissingPeerError(
      peer,
      `startCluster() needs ${CONTROLLER_ENTRY} to export startController and stopController; the installed ${peer} is too old. ${install}`,
    );
  }
  return mod as ControllerEntry;
}

/**
 * A cluster started by {@link startCluster}. Stops when disposed:
 * `await using cluster = await startCluster({ n: 4 })`.
 */
export class Cluster {
  private stopping: Promise<void> | undefined;
  private readonly clients = new Set<Client>();
  private constructor(
    readonly profile: string,
    readonly clusterId: string,
    /** Engine ids registered at start. */
    readonly engineIds: number[],
    /** The client connection file. */
    readonly connectionFile: string,
    private readonly entry: ControllerEntry,
  ) {}

  /** @internal made by {@link startCluster} */
  static create(
    profile: string,
    clusterId: string,
    engineIds: number[],
    connectionFile: string,
    entry: ControllerEntry,
  ): Cluster {
    return new Cluster(profile, clusterId, engineIds, connectionFile, entry);
  }

  /** A client connected to this cluster (closed when the cluster stops). */
  async connect(options: Omit<ConnectOptions, "profile" | "clusterId" | "file"> = {}): Promise<Client> {
    const rc = await connect({ ...options, profile: this.profile, clusterId: this.clusterId });
    this.clients.add(rc);
    rc.once("close", () => this.clients.delete(rc));
    return rc;
  }

  /** Stops every engine and the controller; resolves once their processes have exited. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.clients].map((c) => c.close()));
      await this.entry.stopController({ profile: this.profile, clusterId: this.clusterId });
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts a controller and `n` engines on this machine, like `ptcluster start` (a daemonised
 * controller that `ptcluster list` shows and `ptcluster stop` stops), and resolves once every
 * engine has registered. The cluster ends with this process unless `detached: true`. Options are checked before anything starts (`InvalidOptionError`); a
 * cluster that cannot start rejects with a `ClusterStartError`, and without `@ptcluster/cli`
 * installed with a `MissingPeerError`.
 *
 * ```ts
 * await using cluster = await startCluster({ n: 4 });
 * const rc = await cluster.connect();
 * await rc.view().applySync(() => process.pid);
 * ```
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const values = startValuesFrom(options, "startCluster");
  if (options.clusterId === undefined) values.clusterId = randomBytes(4).toString("hex");
  const entry = await controllerEntry();
  const { summary, shortfall, missed } = await entry.startController(values);
  if (shortfall !== undefined) {
    // `timeout` passed with some engines registered: the command line leaves that cluster running
    // (and says so); here the caller would get no handle on it, so it is stopped.
    await entry.stopController({ profile: summary.profile, clusterId: summary.clusterId });
    throw new ClusterStartError(
      `${missed ?? shortfall} startCluster() stopped the cluster; give a longer \`timeout\` or fewer engines (\`n\`).`,
    );
  }
  return Cluster.create(summary.profile, summary.clusterId, summary.ids, summary.clientFile, entry);
}
