import type { HubOptions } from "@ptcluster/hub";
import {
  newClusterKey,
  newCurveMaterial,
  readAllowedKeys,
  type HubValues,
  type ProfilePaths,
} from "@ptcluster/protocol";
import { mebibytes } from "../util/units.js";

/**
 * The controller's options from the checked values of `start` or `hub`: the one place the
 * table's names and units become `HubOptions`' (ms and bytes, ports grouped, a new key).
 */
export function hubOptions(
  v: HubValues,
  paths: ProfilePaths,
  own: Pick<HubOptions, "logger" | "logFile" | "launch">,
): HubOptions {
  const curve = v.curve ? { ...newCurveMaterial(), allowedKeys: readAllowedKeys(paths.allowedKeysFile) } : undefined;
  return {
    profile: v.profile,
    clusterId: v.clusterId,
    ip: v.ip,
    key: newClusterKey(),
    ...(curve ? { curve } : {}),
    ...(v.location ? { location: v.location } : {}),
    ports: { engine: v.enginePort, client: v.clientPort, notify: v.notifyPort },
    heartbeatMs: v.heartbeat,
    scheme: v.scheme,
    maxMessageBytes: mebibytes(v.maxMessageMb),
    maxSharedBytes: mebibytes(v.maxSharedMb),
    shmThreshold: v.shmThresholdKb * 1024,
    clientTimeoutMs: v.clientTimeout,
    resultTtlMs: v.resultTtl,
    ...own,
  };
}
