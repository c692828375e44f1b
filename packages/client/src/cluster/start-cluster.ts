import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { ClusterStartError, InvalidOptionError, type SchedulerScheme } from "@ptcluster/protocol";
import { connect, type Client } from "../client.js";
import type { ConnectOptions } from "../options.js";
import { describeValue, nonNegativeInt, rejectUnknownKeys } from "../options.js";

export interface StartClusterOptions {
  /** Number of engines (default: the machine's available parallelism). */
  n?: number;
  /** Profile to start it under (default `default`). */
  profile?: string;
  /** Cluster id (default: a new random id, so it never collides with another cluster of the profile). */
  clusterId?: string;
  /** Tasks each engine runs at once (default 1). */
  concurrency?: number;
  /** How long to wait for every engine to register (ms, default 30000). */
  timeout?: number;
  /** How load-balanced tasks pick an engine (default `leastload`). */
  scheme?: SchedulerScheme;
  /** Replace engines that die (default true). */
  restart?: boolean;
}

const KEYS = new Set(["n", "profile", "clusterId", "concurrency", "timeout", "scheme", "restart"]);

interface StartOutput { profile: string; clusterId: string; ids: number[]; clientFile: string }

function cliBin(): string {
  try {
    return fileURLToPath(import.meta.resolve("@ptcluster/cli/bin"));
  } catch (err) {
    throw new ClusterStartError("`startCluster()` needs the `@ptcluster/cli` package; install it next to `@ptcluster/client`.", { cause: err });
  }
}

function runCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliBin(), ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new ClusterStartError(`\`ptcluster ${args[0]}\` failed: ${(stderr || err.message).trim()}`, { cause: err }), { stdout }));
      else resolve(stdout);
    });
  });
}

/**
 * A cluster started by {@link startCluster}. Stops when disposed:
 * `await using cluster = await startCluster({ n: 4 })`.
 */
export class Cluster {
  private stopping: Promise<void> | undefined;
  private readonly clients = new Set<Client>();
  /** @internal */
  constructor(
    readonly profile: string,
    readonly clusterId: string,
    /** Engine ids registered at start. */
    readonly engineIds: number[],
    /** The client connection file. */
    readonly connectionFile: string,
  ) {}

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
      await runCli(["stop", "--profile", this.profile, "--cluster-id", this.clusterId], 30_000);
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts a controller and `n` engines on this machine, like `ptcluster start`, and resolves once
 * every engine has registered.
 *
 * ```ts
 * await using cluster = await startCluster({ n: 4 });
 * const rc = await cluster.connect();
 * await rc.view().applySync(() => process.pid);
 * ```
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError(`Expected startCluster options to be an object, got ${describeValue(options)}`);
  rejectUnknownKeys(options, KEYS, "startCluster");
  const args = ["start", "--json"];
  if (options.n !== undefined) args.push("-n", String(nonNegativeInt("n", options.n)));
  if (options.concurrency !== undefined) args.push("--concurrency", String(nonNegativeInt("concurrency", options.concurrency)));
  if (options.scheme !== undefined) {
    if (!["leastload", "lru", "random", "weighted"].includes(options.scheme)) {
      throw new InvalidOptionError(`Expected \`scheme\` to be one of leastload, lru, random, weighted, got ${describeValue(options.scheme)}`);
    }
    args.push("--scheme", options.scheme);
  }
  if (options.restart !== undefined) {
    if (typeof options.restart !== "boolean") throw new InvalidOptionError(`Expected \`restart\` to be a boolean, got ${describeValue(options.restart)}`);
    if (!options.restart) args.push("--no-restart");
  }
  const timeout = options.timeout === undefined ? 30_000 : nonNegativeInt("timeout", options.timeout);
  args.push("--timeout", String(timeout));
  const profile = options.profile ?? "default";
  const clusterId = options.clusterId ?? randomBytes(4).toString("hex");
  args.push("--profile", profile, "--cluster-id", clusterId);
  let out: string;
  try {
    out = await runCli(args, timeout + 10_000);
  } catch (err) {
    // `--timeout` passed with only some engines registered: the command line leaves that cluster
    // running (and prints it); here the caller gets no handle on it, so it is stopped.
    if (/"controllerPid"/.test((err as { stdout?: string }).stdout ?? "")) await runCli(["stop", "--profile", profile, "--cluster-id", clusterId], 30_000).catch(() => undefined);
    throw err;
  }
  let parsed: StartOutput;
  try {
    parsed = JSON.parse(out.trim().split("\n").pop() ?? "") as StartOutput;
  } catch (err) {
    throw new ClusterStartError(`\`ptcluster start\` printed something unexpected: ${out.slice(0, 300)}`, { cause: err });
  }
  return new Cluster(parsed.profile, parsed.clusterId, parsed.ids, parsed.clientFile);
}
