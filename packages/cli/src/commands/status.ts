import { connect, type RunningTask } from "@ptcluster/client";
import { formatTable } from "./list.js";

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);

/** A duration for a person: `2.3s`, `4m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** An engine's running tasks, `isPrime (2.3s)`, at most three named: `-` when none runs. */
function runningCell(current: RunningTask[] | undefined, now: number): string {
  if (!current?.length) return "-";
  const shown = current
    .slice(0, 3)
    .map((t) => `${t.fn} (${formatDuration(now - t.since)})`)
    .join(", ");
  return current.length > 3 ? `${shown} +${current.length - 3}` : shown;
}

/** `ptcluster status`: the engines of a running cluster: id, pid, host, state, what runs, what waits, tasks done; where the logs are. */
export async function status(o: { profile: string; clusterId: string; json: boolean }): Promise<void> {
  const rc = await connect({ profile: o.profile, clusterId: o.clusterId, timeout: 3_000 });
  try {
    const s = await rc.status();
    if (o.json) {
      process.stdout.write(`${JSON.stringify(s)}\n`);
      return;
    }
    process.stdout.write(
      `Profile ${s.profile}${s.clusterId ? ` (cluster id ${s.clusterId})` : ""}: controller pid ${s.pid}, ${s.engines.length} engines, ${s.clients - 1} other clients, ${s.tasksInFlight} tasks in flight; memory ${mb(s.memory.rss)} MB (heap ${mb(s.memory.heapUsed)} MB), ${s.retained.results} results kept for departed clients (${mb(s.retained.resultBytes)} MB)\n`,
    );
    if (s.log) process.stdout.write(`Logs: ${s.log.dir}${s.log.file ? ` (controller: ${s.log.file})` : ""}\n`);
    if (s.engines.length) {
      // The MPI rank column only when some engine runs under mpiexec.
      const mpi = s.engines.some((e) => e.mpi);
      // engine.comm messages sent, direct to peers and through the controller, once some were sent.
      const comm = s.engines.some((e) => (e.link?.comm?.direct ?? 0) + (e.link?.comm?.relayed ?? 0) > 0);
      // Durations by the controller's clock, which the start times come from.
      const now = s.time ?? Date.now();
      const rows = [
        [
          ...["ID", "PID", "HOST", "STATE", "RUNNING", "QUEUED", "DONE", "CONCURRENCY"],
          ...(mpi ? ["MPI RANK"] : []),
          ...(comm ? ["COMM DIRECT/RELAYED"] : []),
        ],
        ...s.engines
          .sort((a, b) => a.id - b.id)
          .map((e) => [
            String(e.id),
            String(e.pid),
            e.host,
            e.state,
            runningCell(e.current, now),
            String(e.queued ?? 0),
            String(e.tasksDone),
            String(e.concurrency),
            ...(mpi ? [e.mpi ? `${e.mpi.rank}/${e.mpi.size}` : "-"] : []),
            ...(comm ? [`${e.link?.comm?.direct ?? 0}/${e.link?.comm?.relayed ?? 0}`] : []),
          ]),
      ];
      process.stdout.write(formatTable(rows));
    }
    const shared = s.shared?.objects ?? [];
    if (shared.length) {
      process.stdout.write(
        `Shared state: ${shared.length} object${shared.length === 1 ? "" : "s"}, ${mb(s.shared.bytes)} of ${mb(s.shared.maxBytes)} MB\n`,
      );
      const rows = [
        ["NAME", "KIND", "SIZE", "MB", "WAITING"],
        ...shared
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((o) => [o.name, o.kind, String(o.size), mb(o.bytes), String(o.waiting)]),
      ];
      process.stdout.write(formatTable(rows));
    }
    // Pipelines: one row per stage, named `<client id, first 8>:<pipe>` (the client's id begins its msg ids).
    const pipelines = s.pipelines ?? [];
    if (pipelines.length) {
      process.stdout.write(`Pipelines: ${pipelines.length} running\n`);
      const rows = [
        ["PIPELINE", "STAGE", "KIND", "NAME", "IN FLIGHT", "DONE", "FAILED", "ITEMS/S", "P50 MS", "P95 MS"],
        ...pipelines.flatMap((p) =>
          p.stages.map((st) => [
            `${p.client.slice(0, 8)}:${p.pipe}`,
            String(st.stage),
            st.kind,
            st.name,
            String(st.inFlight),
            String(st.done),
            String(st.failed),
            String(st.itemsPerSec),
            String(st.p50Ms),
            String(st.p95Ms),
          ]),
        ),
      ];
      process.stdout.write(formatTable(rows));
    }
  } finally {
    await rc.close();
  }
}
