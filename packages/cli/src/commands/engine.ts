import { join } from "node:path";
import { Engine } from "@ptcluster/engine";
import { InvalidOptionError, createLogger, profilePaths, readConnectionFile } from "@ptcluster/protocol";

export interface EngineCommandOptions {
  file: string | undefined;
  url: string | undefined;
  key: string | undefined;
  profile: string;
  clusterId: string;
  concurrency: number;
  id: number | undefined;
  orphanTimeout: number;
}

/** `ptcluster engine`: one engine in the foreground, registering with the controller of `--file` (or `--url` and `--key`). */
export async function engine(o: EngineCommandOptions): Promise<void> {
  let host: string;
  let port: number;
  let key: string;
  if (o.url) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(o.url);
    if (!m) throw new InvalidOptionError(`Expected \`--url\` like tcp://10.0.0.1:5555, got \`${o.url}\``);
    if (!o.key || !/^[0-9a-f]{64}$/.test(o.key)) throw new InvalidOptionError("`--url` needs `--key` with the cluster key (64 hex digits) from the engine connection file");
    host = (m[1] as string).replace(/^\[|\]$/g, "");
    port = Number(m[2]);
    key = o.key;
  } else {
    const paths = profilePaths(o.profile, o.clusterId);
    const info = readConnectionFile(o.file ?? paths.engineFile, "engine", o.file ? undefined : o.profile);
    host = info.host;
    port = info.port;
    key = info.key;
  }
  const logDir = process.env["PTCLUSTER_ENGINE_LOG_DIR"];
  const logger = createLogger({ name: "ptcluster", file: logDir ? join(logDir, `engine-${process.pid}.log`) : undefined });
  const e = new Engine({
    host, port, key: Buffer.from(key, "hex"), concurrency: o.concurrency, logger, orphanTimeoutMs: o.orphanTimeout,
    ...(o.id !== undefined ? { requestedId: o.id } : {}),
  });
  process.once("SIGINT", () => void e.stop("SIGINT"));
  process.once("SIGTERM", () => void e.stop("SIGTERM"));
  await e.start();
  const code = await e.stopped;
  logger.flush?.();
  process.exitCode = code;
}
