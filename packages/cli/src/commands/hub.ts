import { join } from "node:path";
import { Hub } from "@ptcluster/hub";
import { createLogger, ensureProfileDirs, newClusterKey, newCurveMaterial, profilePaths, readAllowedKeys, writeClusterState, type SchedulerScheme } from "@ptcluster/protocol";
import { checkExposure } from "../util/exposure.js";
import { rmSync } from "node:fs";
import { mebibytes } from "../util/units.js";
import { tidyLogs } from "../util/log-files.js";

/** `ptcluster hub`: only the controller, in the foreground; engines join with `ptcluster engine`. */
export async function hub(o: { profile: string; clusterId: string; ip: string; location: string | undefined; heartbeatMs: number; scheme: SchedulerScheme; maxMessageMb: number; curve: boolean; encryption: boolean | undefined; ports?: { engine: number; client: number; notify: number } }): Promise<void> {
  checkExposure(o.ip, o.curve, o.encryption);
  const paths = profilePaths(o.profile, o.clusterId);
  ensureProfileDirs(paths);
  tidyLogs(paths);
  const logFile = join(paths.logDir, `hub${o.clusterId ? `-${o.clusterId}` : ""}.log`);
  const logger = createLogger({ name: "ptcluster", file: logFile, echo: true });
  const curve = o.curve ? { ...newCurveMaterial(), allowedKeys: readAllowedKeys(paths.allowedKeysFile) } : undefined;
  const h = new Hub({ profile: o.profile, clusterId: o.clusterId, ip: o.ip, key: newClusterKey(), ...(curve ? { curve } : {}), heartbeatMs: o.heartbeatMs, scheme: o.scheme, maxMessageBytes: mebibytes(o.maxMessageMb), logger, logFile, ...(o.location ? { location: o.location } : {}), ...(o.ports ? { ports: o.ports } : {}) });
  await h.start();
  writeClusterState(paths.stateFile, { profile: o.profile, clusterId: o.clusterId, hubPid: process.pid, enginePids: [], startedAt: Date.now(), state: "running", engines: 0 });
  process.stdout.write(`Controller running (pid ${process.pid}). Client file: ${paths.clientFile}\nEngine file: ${paths.engineFile}\nPorts: engine ${h.ports.engine}, client ${h.ports.client}, notify ${h.ports.notify}\nLog: ${logFile}\n`);
  const stop = () => void h.stop("signal");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await h.stopped;
  rmSync(paths.stateFile, { force: true });
  logger.flush?.();
}
