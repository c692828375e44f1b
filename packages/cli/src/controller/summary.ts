import { profilePaths, type StartSummary } from "@ptcluster/protocol";

/** How to name this cluster on the command line: ` --profile P --cluster-id C`, or "" for the default. */
export function clusterArgs(profile: string, clusterId: string): string {
  return `${profile !== "default" ? ` --profile ${profile}` : ""}${clusterId ? ` --cluster-id ${clusterId}` : ""}`;
}

/** What `ptcluster start` prints once the cluster is up: a few lines, or one JSON line with `--json`. */
export function printSummary(s: StartSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const flags = clusterArgs(s.profile, s.clusterId);
  process.stdout.write(
    `Cluster started: ${s.ids.length} engine${s.ids.length === 1 ? "" : "s"} [${s.ids.join(", ")}]\n` +
      `  profile     ${s.profile}${s.clusterId ? ` (cluster id ${s.clusterId})` : ""}\n` +
      `  connection  ${s.clientFile}\n` +
      `  controller  pid ${s.controllerPid}; engine pids ${s.enginePids.join(", ") || "none"}\n` +
      `  logs        ${profilePaths(s.profile, s.clusterId).logDir}\n` +
      `Connect with \`ptcluster repl${flags}\` or \`await connect(${s.profile !== "default" || s.clusterId ? JSON.stringify({ profile: s.profile, ...(s.clusterId ? { clusterId: s.clusterId } : {}) }) : ""})\`; stop with \`ptcluster stop${flags}\`.\n`,
  );
}
