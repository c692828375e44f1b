import { hostname } from "node:os";
import { rmSync } from "node:fs";
import {
  PROTOCOL_VERSION,
  ensureProfileDirs,
  writeConnectionFile,
  type ConnectionInfo,
  type CurveKeyPair,
  type CurveMaterial,
  type ProfilePaths,
  type ShmAdvert,
} from "@ptcluster/protocol";

export interface ConnectionFileOptions {
  paths: ProfilePaths;
  clusterId: string;
  ip: string;
  /** Address peers connect to (default: `ip`, or this host's name for a wildcard bind). */
  location: string | undefined;
  key: Buffer;
  maxMessageBytes: number;
  ports: { client: number; engine: number; notify: number };
  curve: CurveMaterial | undefined;
  /** The shared-memory folder and host token, for clients and engines of this host. */
  shm: ShmAdvert | undefined;
}

/** Writes the engine and client connection files; returns the address written into them. */
export function writeConnectionFiles(o: ConnectionFileOptions): string {
  ensureProfileDirs(o.paths);
  const location = o.location ?? (o.ip === "0.0.0.0" || o.ip === "*" ? hostname() : o.ip);
  const base = {
    protocol: PROTOCOL_VERSION,
    clusterId: o.clusterId,
    profile: o.paths.profile,
    host: location,
    key: o.key.toString("hex"),
    signatureScheme: "chacha20-poly1305" as const,
    hubPid: process.pid,
    createdAt: Date.now(),
    maxMessageBytes: o.maxMessageBytes,
    ...(o.shm ? { shm: o.shm } : {}),
  };
  const curve = o.curve;
  const keysFor = (pair: CurveKeyPair | undefined) =>
    curve && pair ? { curve: { serverKey: curve.server.publicKey, ...pair } } : {};
  writeConnectionFile(o.paths.engineFile, {
    ...base,
    kind: "engine",
    port: o.ports.engine,
    ...keysFor(curve?.engine),
  } satisfies ConnectionInfo);
  writeConnectionFile(o.paths.clientFile, {
    ...base,
    kind: "client",
    port: o.ports.client,
    notifyPort: o.ports.notify,
    ...keysFor(curve?.client),
  } satisfies ConnectionInfo);
  return location;
}

export function removeConnectionFiles(paths: ProfilePaths): void {
  for (const f of [paths.clientFile, paths.engineFile]) rmSync(f, { force: true });
}
