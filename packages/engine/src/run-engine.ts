import { join } from "node:path";
import { InvalidOptionError, createLogger, profilePaths, readConnectionFile, type CurveClientKeys } from "@ptcluster/protocol";
import { Engine } from "./supervisor/engine.js";

export interface RunEngineOptions {
  /** Engine connection file (default: the profile's `security/engine.json`). */
  file?: string | undefined;
  /** Controller engine endpoint `tcp://HOST:PORT`, with `key`, instead of a file. */
  url?: string | undefined;
  key?: string | undefined;
  profile?: string | undefined;
  clusterId?: string | undefined;
  concurrency?: number | undefined;
  id?: number | undefined;
  orphanTimeout?: number | undefined;
  /** Heap limit of the executor thread (MB). */
  maxMemory?: number | undefined;
  /** Directory for this engine's pino log (default: stderr). */
  logDir?: string | undefined;
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
  if (o.url) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(o.url);
    if (!m) throw new InvalidOptionError(`Expected \`--url\` like tcp://10.0.0.1:5555, got \`${o.url}\``);
    if (!o.key || !/^[0-9a-f]{64}$/.test(o.key)) throw new InvalidOptionError("`--url` needs `--key` with the cluster key (64 hex digits) from the engine connection file");
    host = (m[1] as string).replace(/^\[|\]$/g, "");
    port = Number(m[2]);
    key = o.key;
  } else {
    const profile = o.profile ?? "default";
    const info = readConnectionFile(o.file ?? profilePaths(profile, o.clusterId ?? "").engineFile, "engine", o.file ? undefined : profile);
    host = info.host;
    port = info.port;
    key = info.key;
    maxMessageBytes = info.maxMessageBytes;
    curve = info.curve;
  }
  if (o.maxMemory !== undefined && (!Number.isInteger(o.maxMemory) || o.maxMemory < 16)) {
    throw new InvalidOptionError(`Expected \`--max-memory\` to be a whole number of MB, at least 16, got \`${o.maxMemory}\``);
  }
  const concurrency = o.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionError(`Expected \`--concurrency\` to be a positive integer, got \`${concurrency}\``);
  const logger = createLogger({ name: "ptcluster", file: o.logDir ? join(o.logDir, `engine-${process.pid}.log`) : undefined });
  const e = new Engine({
    host, port, key: Buffer.from(key, "hex"), concurrency, logger,
    ...(o.orphanTimeout !== undefined ? { orphanTimeoutMs: o.orphanTimeout } : {}),
    ...(o.maxMemory !== undefined ? { maxMemoryMb: o.maxMemory } : {}),
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
    ...(curve ? { curve } : {}),
    ...(o.id !== undefined ? { requestedId: o.id } : {}),
  });
  process.once("SIGINT", () => void e.stop("SIGINT"));
  process.once("SIGTERM", () => void e.stop("SIGTERM"));
  await e.start();
  const code = await e.stopped;
  logger.flush?.();
  return code;
}
