import { connect } from "@ptcluster/client";
import { formatTable } from "./list.js";

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);

/** `ptcluster status`: the engines of a running cluster: id, pid, host, state, tasks done. */
export async function status(o: { profile: string; clusterId: string; json: boolean }): Promise<void> {
  const rc = await connect({ profile: o.profile, clusterId: o.clusterId, timeout: 3_000 });
  try {
    const s = await rc.status();
    if (o.json) {
      process.stdout.write(`${JSON.stringify(s)}\n`);
      return;
    }
    process.stdout.write(`Profile ${s.profile}${s.clusterId ? ` (cluster id ${s.clusterId})` : ""}: controller pid ${s.pid}, ${s.engines.length} engines, ${s.clients - 1} other clients, ${s.tasksInFlight} tasks in flight; memory ${mb(s.memory.rss)} MB (heap ${mb(s.memory.heapUsed)} MB), ${s.retained.results} results kept for departed clients (${mb(s.retained.resultBytes)} MB)\n`);
    if (s.engines.length) {
      // The MPI rank column only when some engine runs under mpiexec.
      const mpi = s.engines.some((e) => e.mpi);
      const rows = [
        ["ID", "PID", "HOST", "STATE", "RUNNING", "DONE", "CONCURRENCY", ...(mpi ? ["MPI RANK"] : [])],
        ...s.engines.sort((a, b) => a.id - b.id).map((e) => [
          String(e.id), String(e.pid), e.host, e.state, String(e.running), String(e.tasksDone), String(e.concurrency),
          ...(mpi ? [e.mpi ? `${e.mpi.rank}/${e.mpi.size}` : "-"] : []),
        ]),
      ];
      process.stdout.write(formatTable(rows));
    }
  } finally {
    await rc.close();
  }
}
