import { join } from "node:path";
import {
  InvalidOptionError,
  createLogger,
  parseConnectionInfo,
  profilePaths,
  readConnectionFile,
  type ConnectionInfo,
  type CurveClientKeys,
  type ShmConfig,
  probeShm,
} from "@ptcluster/protocol";
import { Engine } from "./supervisor/engine.js";
import { mpiFromEnv } from "./shared/mpi.js";
import { defaultMaxMemoryMb } from "./memory-limit.js";

export interface RunEngineOptions {
  /**
   * Engine connection file (default: the profile's `security/engine.json`); `-` reads it from
   * standard input, so launchers (ssh) hand it over without writing the key on the remote host.
   */
  file?: string | undefined;
  /** Controller engine endpoint `tcp://HOST:PORT`, with `key`, instead of a file. */
  url?: string | undefined;
  key?: string | undefined;
  profile?: string | undefined;
  clusterId?: string | undefined;
  concurrency?: number | undefined;
  id?: number | undefined;
  /**
   * Under MPI (`mpiexec`), ask for id `idBase + rank` (default 0: ids follow ranks). Ignored
   * outside MPI or when `id` is given.
   */
  idBase?: number | undefined;
  /** The launch this engine belongs to (set by launchers). */
  launchTag?: string | undefined;
  /** Stop when standard input ends: the launcher's connection (ssh) is the engine's lifeline. */
  exitOnStdinClose?: boolean | undefined;
  orphanTimeout?: number | undefined;
  /** Memory limit of the executor thread, heap and off-heap (MB; default `defaultMaxMemoryMb()`). */
  maxMemory?: number | undefined;
  /** Directory for this engine's pino log (default: stderr). */
  logDir?: string | undefined;
  /** Address of this engine's `engine.comm` peer endpoint (default: the one it reaches the controller from). */
  peerIp?: string | undefined;
}

/**
 * Runs one engine process until it is told to stop or its controller goes silent: the body of
 * `ptcluster engine`. Resolves with the exit code.
 */
export async function runEngine(o: RunEngineOptions): Promise<number> {
  let host: string;
  let port: number;
  let key: string;
  let maxMessageBytes: number | undefined;
  let curve: CurveClientKeys | undefined;
  let shm: ShmConfig | undefined;
  if (o.url) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(o.url);
    if (!m) throw new InvalidOptionError(`Expected \`--url\` like tcp://10.0.0.1:5555, got \`${o.url}\``);
    if (!o.key || !/^[0-9a-f]{64}$/.test(o.key))
      throw new InvalidOptionError(
        "`--url` needs `--key` with the cluster key (64 hex digits) from the engine connection file",
      );
    host = (m[1] as string).replace(/^\[|\]$/g, "");
    port = Number(m[2]);
    key = o.key;
  } else {
    const profile = o.profile ?? "default";
    const info: ConnectionInfo =
      o.file === "-"
        ? parseConnectionInfo(await readStdinDocument(), "(standard input)", "engine")
        : readConnectionFile(
            o.file ?? profilePaths(profile, o.clusterId ?? "").engineFile,
            "engine",
            o.file ? undefined : profile,
          );
    host = info.host;
    port = info.port;
    key = info.key;
    maxMessageBytes = info.maxMessageBytes;
    curve = info.curve;
    // Same host as the controller (it can read the controller's host token): large values go through files.
    shm = probeShm(info);
  }
  if (o.maxMemory !== undefined && (!Number.isInteger(o.maxMemory) || o.maxMemory < 16)) {
    throw new InvalidOptionError(
      `Expected \`--max-memory\` to be a whole number of MB, at least 16, got \`${o.maxMemory}\``,
    );
  }
  const concurrency = o.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new InvalidOptionError(`Expected \`--concurrency\` to be a positive integer, got \`${concurrency}\``);
  const mpi = mpiFromEnv();
  if (o.idBase !== undefined && (!Number.isInteger(o.idBase) || o.idBase < 0))
    throw new InvalidOptionError(`Expected \`--id-base\` to be a non-negative integer, got \`${o.idBase}\``);
  const requestedId = o.id ?? (mpi ? (o.idBase ?? 0) + mpi.rank : undefined);
  const logger = createLogger({
    name: "ptcluster",
    file: o.logDir ? join(o.logDir, `engine-${process.pid}.log`) : undefined,
  });
  const e = new Engine({
    host,
    port,
    key: Buffer.from(key, "hex"),
    concurrency,
    logger,
    ...(o.orphanTimeout !== undefined ? { orphanTimeoutMs: o.orphanTimeout } : {}),
    // Memory is bounded whether or not the launcher said how much (off-heap included: `MemoryWatch`).
    maxMemoryMb: o.maxMemory ?? defaultMaxMemoryMb(),
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
    ...(curve ? { curve } : {}),
    ...(shm ? { shm } : {}),
    ...(o.peerIp ? { peerIp: o.peerIp } : {}),
    ...(requestedId !== undefined ? { requestedId } : {}),
    ...(o.launchTag ? { tag: o.launchTag } : {}),
    ...(mpi ? { mpi } : {}),
  });
  process.once("SIGINT", () => void e.stop("SIGINT"));
  process.once("SIGTERM", () => void e.stop("SIGTERM"));
  if (o.exitOnStdinClose) {
    process.stdin.on("end", () => void e.stop("launcher connection closed"));
    process.stdin.on("error", () => void e.stop("launcher connection closed"));
    process.stdin.resume();
  }
  await e.start();
  if (o.exitOnStdinClose && process.stdin.readableEnded) void e.stop("launcher connection closed");
  const code = await e.stopped;
  logger.flush?.();
  return code;
}

/**
 * Reads one connection document from standard input: up to the first newline after a complete
 * JSON object (so a launcher can keep the stream open as a lifeline), or to the end.
 */
async function readStdinDocument(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      if (text.length > 1_000_000)
        return finish(
          new InvalidOptionError("Standard input holds more than 1 MB; expected an engine connection file."),
        );
      const nl = text.indexOf("\n", text.lastIndexOf("}"));
      if (text.includes("}") && nl >= 0) {
        try {
          JSON.parse(text.slice(0, nl));
          finish(undefined, text.slice(0, nl));
        } catch {
          /* the object is not complete yet */
        }
      }
    };
    const onEnd = () => finish(undefined, text);
    const finish = (err?: Error, doc?: string) => {
      process.stdin.off("data", onData);
      process.stdin.off("end", onEnd);
      process.stdin.pause();
      if (err) reject(err);
      else resolve(doc ?? "");
    };
    process.stdin.on("data", onData);
    process.stdin.on("end", onEnd);
    process.stdin.on("error", (err) => finish(err));
  });
}
