import { connect } from "@ptcluster/client";
import type { CLUSTER_OPTIONS, ValuesFor } from "@ptcluster/protocol";
import { launcherSettings } from "../controller/prepare.js";

/** The table's options of `engines` (cluster, launcher and its settings) and its own. */
export interface EnginesOptions extends ValuesFor<typeof CLUSTER_OPTIONS, "engines"> {
  /** engines to add */
  n: number;
  /** false: `--engines` not given, so the cluster's own launcher (and its settings) is used */
  enginesGiven: boolean;
  timeout: number;
  json: boolean;
}

/** `ptcluster engines -n K`: asks the running controller to launch K more engines, and waits for them. */
export async function addEngines(o: EnginesOptions): Promise<void> {
  const rc = await connect({ profile: o.profile, clusterId: o.clusterId });
  try {
    const settings = launcherSettings(o);
    const { ids } = await rc.addEngines(o.n, {
      ...(o.enginesGiven ? { launcher: o.engines } : {}),
      timeout: o.timeout,
      ...settings,
    });
    if (o.json) process.stdout.write(`${JSON.stringify({ ids })}\n`);
    else process.stdout.write(`Added ${ids.length} engine${ids.length === 1 ? "" : "s"}: [${ids.join(", ")}].\n`);
  } finally {
    await rc.close();
  }
}
