/**
 * `@ptcluster/cli/controller`: the declared entry point that starts and stops daemonised
 * controllers, for `startCluster()` of `@ptcluster/client` (which imports it dynamically: it is an
 * optional peer dependency there, since this package depends on the client). The contract,
 * `ControllerEntry`, is typed in `@ptcluster/protocol`; the values are those of the options table
 * (`CLUSTER_OPTIONS`), so `ptcluster start` and `startCluster()` start the same controller.
 *
 * ```ts
 * import { startController, stopController } from "@ptcluster/cli/controller";
 * import { startValuesFrom } from "@ptcluster/protocol";
 * const { summary } = await startController(startValuesFrom({ n: 2, clusterId: "demo" }));
 * await stopController({ profile: summary.profile, clusterId: summary.clusterId });
 * ```
 */
import type { ControllerEntry, StartedController, StartValues } from "@ptcluster/protocol";
import { stopCluster } from "../commands/stop.js";
import { spawnDaemon } from "./daemon.js";
import { releaseOwnerLink } from "./owner-link.js";
import { prepareStart } from "./prepare.js";

/**
 * Starts a daemonised controller and its engines, as `ptcluster start` does (see `ControllerEntry`);
 * unless `values.detached`, the controller stops when this process ends, however it ends.
 */
export const startController: ControllerEntry["startController"] = async (
  values: StartValues,
): Promise<StartedController> => {
  const { values: ready, paths } = prepareStart({ ...values, foreground: false, ipcReady: false });
  return spawnDaemon(ready, paths);
};

/** Stops a cluster as `ptcluster stop` does: the controller, then every process by pid (`graceMs` before SIGTERM, default 1 s). */
export const stopController: ControllerEntry["stopController"] = async (target) => {
  try {
    await stopCluster(target.profile, target.clusterId, target.graceMs ?? 1_000);
  } finally {
    releaseOwnerLink(target.profile, target.clusterId);
  }
};
