import { join } from "node:path";
import { rmSync } from "node:fs";
import { Hub } from "@ptcluster/hub";
import { createLogger, ensureProfileDirs, profilePaths, writeClusterState, type HubValues } from "@ptcluster/protocol";
import { hubOptions } from "../controller/hub-options.js";
import { checkExposure } from "../util/exposure.js";
import { tidyLogs } from "../util/log-files.js";

/** `ptcluster hub`: only the controller, in the foreground; engines join with `ptcluster engine`. */
export async function hub(o: HubValues): Promise<void> {
  checkExposure(o.ip, o.curve, o.encryption);
  const paths = profilePaths(o.profile, o.clusterId);
  ensureProfileDirs(paths);
  tidyLogs(paths);
  const logFile = join(paths.logDir, `hub${o.clusterId ? `-${o.clusterId}` : ""}.log`);
  const logger = createLogger({ name: "ptcluster", file: logFile, echo: true });
  const h = new Hub(hubOptions(o, paths, { logger, logFile }));
  await h.start();
  writeClusterState(paths.stateFile, {
    profile: o.profile,
    clusterId: o.clusterId,
    hubPid: process.pid,
    enginePids: [],
    startedAt: Date.now(),
    state: "running",
    engines: 0,
  });
  process.stdout.write(
    `Controller running (pid ${process.pid}). Client file: ${paths.clientFile}\nEngine file: ${paths.engineFile}\nPorts: engine ${h.ports.engine}, client ${h.ports.client}, notify ${h.ports.notify}\nLog: ${logFile}\n`,
  );
  const stop = () => void h.stop("signal");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await h.stopped;
  rmSync(paths.stateFile, { force: true });
  logger.flush?.();
}
