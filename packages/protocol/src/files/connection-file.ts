import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { ConnectionFileError, NoClusterError } from "../errors.js";
import { PROTOCOL_VERSION } from "../version.js";
import type { CurveClientKeys } from "../security/curve.js";
import { isCurveKey } from "../security/z85.js";
import type { ShmAdvert } from "../shm/shm-dir.js";

/** What a client or an engine needs to reach a controller. Written with mode 0600. */
export interface ConnectionInfo {
  /** `client` or `engine`: which side this file is for. */
  kind: "client" | "engine";
  protocol: string;
  clusterId: string;
  profile: string;
  /** Address to connect to (the advertised location). */
  host: string;
  /** ROUTER for this side (clients: client port; engines: engine port). */
  port: number;
  /** Notification PUB (clients only). */
  notifyPort?: number;
  /** Cluster key, hex. */
  key: string;
  signatureScheme: "chacha20-poly1305";
  /** Largest message (all frames) a peer may send, in bytes. */
  maxMessageBytes?: number;
  /** Present when the cluster runs with `--curve`: this side's key pair and the controller's public key. */
  curve?: CurveClientKeys;
  hubPid: number;
  createdAt: number;
  /** The controller's shared-memory folder, host token and threshold (absent: shared memory is off). */
  shm?: ShmAdvert;
}

/** Writes JSON owner-readable only, atomically (temp file + rename). */
export function writePrivateJson(file: string, data: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function writeConnectionFile(file: string, info: ConnectionInfo): void {
  writePrivateJson(file, info);
}

/**
 * Reads a connection file. A missing file becomes {@link NoClusterError} when `profile` is given;
 * a file readable by group or others is refused, because its key grants code execution.
 */
export function readConnectionFile(file: string, expect: "client" | "engine", profile?: string): ConnectionInfo {
  let text: string;
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) {
      throw new ConnectionFileError(
        file,
        `Connection file ${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); its key grants code execution on the engines. Run \`chmod 600 ${file}\`.`,
        { code: "ERR_PTC_CONNECTION_FILE_MODE" },
      );
    }
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConnectionFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && profile !== undefined) throw new NoClusterError(profile, file);
    throw new ConnectionFileError(file, `Cannot read connection file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConnectionInfo(text, file, expect);
}

/** Parses and checks the text of a connection file (`source` names it in errors: a path, or standard input). */
export function parseConnectionInfo(text: string, file: string, expect: "client" | "engine"): ConnectionInfo {
  let info: ConnectionInfo;
  try {
    info = JSON.parse(text) as ConnectionInfo;
  } catch (err) {
    throw new ConnectionFileError(
      file,
      `Connection file ${file} is not valid JSON (${(err as Error).message}). Restart the cluster to rewrite it.`,
      { cause: err },
    );
  }
  const problems: string[] = [];
  if (info.kind !== expect)
    problems.push(
      `it is a${info.kind === "engine" ? "n" : ""} ${String(info.kind)} file, expected a${expect === "engine" ? "n" : ""} ${expect} file`,
    );
  if (typeof info.host !== "string" || !info.host) problems.push("no host");
  if (!Number.isInteger(info.port)) problems.push("no port");
  if (typeof info.key !== "string" || !/^[0-9a-f]{64}$/.test(info.key)) problems.push("no valid key");
  if (expect === "client" && !Number.isInteger(info.notifyPort)) problems.push("no notifyPort");
  if (
    info.curve !== undefined &&
    !(isCurveKey(info.curve.serverKey) && isCurveKey(info.curve.publicKey) && isCurveKey(info.curve.secretKey))
  ) {
    problems.push("malformed curve keys");
  }
  if (problems.length) {
    throw new ConnectionFileError(file, `Connection file ${file} is not usable: ${problems.join("; ")}.`);
  }
  info.protocol ??= PROTOCOL_VERSION;
  return info;
}

export function endpoint(host: string, port: number): string {
  return `tcp://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}
