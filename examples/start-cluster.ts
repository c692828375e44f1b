/**
 * A self-contained script: start a cluster, use it, and stop it when the scope ends (like
 * `ipp.Cluster(n=2)` as a context manager).
 */
import { startCluster } from "@ptcluster/client";

await using cluster = await startCluster({ n: 2 });
const rc = await cluster.connect();
console.log("engines", rc.ids);
console.log(await rc.view().applySync(() => process.version));
