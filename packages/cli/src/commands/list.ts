import { listClusterStates, pidAlive } from "@ptcluster/protocol";

/** `ptcluster list`: every cluster under $PTCLUSTER_DIR, running or stale. */
export function list(o: { json: boolean }): void {
  const rows = listClusterStates().map(({ file, state }) => ({
    profile: state.profile,
    clusterId: state.clusterId,
    state: pidAlive(state.hubPid) ? state.state : "stale (controller not running)",
    controllerPid: state.hubPid,
    engines: state.enginePids.filter(pidAlive).length,
    startedAt: new Date(state.startedAt).toISOString(),
    file,
  }));
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return;
  }
  if (!rows.length) {
    process.stdout.write("No clusters. Start one with `ptcluster start -n 4`.\n");
    return;
  }
  const table = [
    ["PROFILE", "CLUSTER ID", "STATE", "CONTROLLER", "ENGINES", "STARTED"],
    ...rows.map((r) => [
      r.profile,
      r.clusterId || "-",
      r.state,
      String(r.controllerPid),
      String(r.engines),
      r.startedAt,
    ]),
  ];
  process.stdout.write(formatTable(table));
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}
