import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { writePrivateJson } from "./connection-file.js";
import { ptclusterDir, profilePaths } from "./profile.js";

/** `run/cluster.json`: what `ptcluster stop` needs to tear a cluster down, even without its controller. */
export interface ClusterState {
  profile: string;
  clusterId: string;
  hubPid: number;
  /** Processes of this machine that belong to the cluster's engines: engines, ssh sessions, mpiexec. */
  enginePids: number[];
  /** Batch jobs running engines (Slurm), cancelled by `ptcluster stop`. */
  jobs?: Array<{ launcher: string; id: string }>;
  /** Pid of a supervising `ptcluster start --foreground` process, if any. */
  supervisorPid?: number;
  startedAt: number;
  state: "starting" | "running" | "stopping";
  engines: number;
}

export function writeClusterState(file: string, state: ClusterState): void {
  writePrivateJson(file, state);
}

export function readClusterState(file: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

/**
 * Is a process with this pid alive? A zombie (exited, not yet reaped: daemons are reaped by init,
 * sometimes seconds later) counts as gone.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the parenthesised command name: "<pid> (<comm>) <state> …"
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch (err) {
    // Gone between the two checks, or no /proc (macOS): then trust kill(0).
    return (err as NodeJS.ErrnoException).code !== "ENOENT" || !existsSync("/proc/self");
  }
}

/** Every cluster state file under `$PTCLUSTER_DIR`, with its profile and cluster id. */
export function listClusterStates(): Array<{ file: string; state: ClusterState }> {
  const root = ptclusterDir();
  if (!existsSync(root)) return [];
  const out: Array<{ file: string; state: ClusterState }> = [];
  for (const entry of readdirSync(root)) {
    if (!entry.startsWith("profile_")) continue;
    const runDir = profilePaths(entry.slice("profile_".length)).runDir;
    if (!existsSync(runDir)) continue;
    for (const f of readdirSync(runDir)) {
      if (!/^cluster(-[A-Za-z0-9_.-]+)?\.json$/.test(f)) continue;
      const file = join(runDir, f);
      const state = readClusterState(file);
      if (state) out.push({ file, state });
    }
  }
  return out;
}
