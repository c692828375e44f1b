import { readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { listClusterStates, pidAlive, type ClusterState, type ProfilePaths } from "@ptcluster/protocol";

/** Stale log files kept at most (the newest): about the last few clusters' worth. */
export const KEEP_STALE_LOGS = 60;
/** Stale log files older than this go whatever their number (ms). */
export const MAX_STALE_LOG_AGE_MS = 14 * 24 * 3600_000;
/** A controller log above this size is moved aside (to `.1`, replacing the previous one) at start. */
export const MAX_CONTROLLER_LOG_BYTES = 16 * 1024 * 1024;

/**
 * Who writes a log file, read from its name: an engine by pid (`engine-<pid>.log`), a launch by
 * its controller's pid (`engine-<launcher>-<pid>-<n>.stdout`), a controller by its cluster id
 * (`hub[-<id>].log`, `controller[-<id>].stderr`), a Slurm job (`slurm-<job>.stdout`). Other files
 * are not ours to remove.
 */
type Writer = { pid: number } | { clusterId: string } | { job: string };

function writerOf(name: string): Writer | undefined {
  let m = /^engine-(\d+)\.log$/.exec(name);
  if (m) return { pid: Number(m[1]) };
  m = /^engine-[a-z]+-(\d+)-\d+(?:-\d+)?\.(?:log|stdout|stderr)$/.exec(name);
  if (m) return { pid: Number(m[1]) };
  m = /^(?:hub|controller)(?:-([A-Za-z0-9_.-]+?))?\.(?:log(?:\.1)?|stderr)$/.exec(name);
  if (m) return { clusterId: m[1] ?? "" };
  m = /^slurm-(\d+)\.(?:stdout|stderr)$/.exec(name);
  if (m) return { job: m[1] as string };
  return undefined;
}

/**
 * Removes log files of clusters that no longer run from `logDir`, keeping the newest `keep` of
 * them and none older than `maxAgeMs`; a file whose writer may still run (its process, or a
 * cluster of this profile with a live controller) is never touched. Returns the removed names.
 */
export function pruneLogs(
  logDir: string,
  profile: string,
  options: { keep?: number; maxAgeMs?: number; now?: number } = {},
): string[] {
  const keep = options.keep ?? KEEP_STALE_LOGS;
  const oldest = (options.now ?? Date.now()) - (options.maxAgeMs ?? MAX_STALE_LOG_AGE_MS);
  let names: string[];
  try {
    names = readdirSync(logDir);
  } catch {
    return [];
  }
  const running = listClusterStates()
    .map((c) => c.state)
    .filter(
      (s) =>
        s.profile === profile && (pidAlive(s.hubPid) || (s.supervisorPid !== undefined && pidAlive(s.supervisorPid))),
    );
  const live = (w: Writer): boolean => {
    if ("pid" in w) return pidAlive(w.pid);
    if ("clusterId" in w) return running.some((s) => s.clusterId === w.clusterId);
    return running.some((s: ClusterState) => s.jobs?.some((j) => j.id === w.job));
  };
  const stale: Array<{ name: string; mtime: number }> = [];
  for (const name of names) {
    const w = writerOf(name);
    if (!w || live(w)) continue;
    try {
      stale.push({ name, mtime: statSync(join(logDir, name)).mtimeMs });
    } catch {
      /* gone meanwhile */
    }
  }
  stale.sort((a, b) => b.mtime - a.mtime);
  const removed: string[] = [];
  stale.forEach(({ name, mtime }, i) => {
    if (i < keep && mtime >= oldest) return;
    rmSync(join(logDir, name), { force: true });
    removed.push(name);
  });
  return removed;
}

/**
 * A controller's log grows across starts (it appends): past `maxBytes`, it is moved to `<file>.1`
 * before the controller opens it again. Checked at start, when nothing writes it.
 */
export function capControllerLog(file: string, maxBytes = MAX_CONTROLLER_LOG_BYTES): void {
  try {
    if (statSync(file).size > maxBytes) renameSync(file, `${file}.1`);
  } catch {
    /* no log yet */
  }
}

/** The controller's log file of a cluster. */
export function controllerLogFile(paths: ProfilePaths): string {
  return join(paths.logDir, `hub${paths.clusterId ? `-${paths.clusterId}` : ""}.log`);
}

/** Before a controller starts: prune stale logs of the profile and cap its own log. */
export function tidyLogs(paths: ProfilePaths): void {
  pruneLogs(paths.logDir, paths.profile);
  capControllerLog(controllerLogFile(paths));
}
