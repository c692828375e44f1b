import { availableParallelism } from "node:os";
import {
  ClusterStartError,
  InvalidOptionError,
  LAUNCHER_OPTIONS,
  ensureProfileDirs,
  pidAlive,
  profilePaths,
  readClusterState,
  type LauncherValues,
  type ProfilePaths,
  type StartValues,
} from "@ptcluster/protocol";
import { defaultMaxMemoryMb } from "@ptcluster/engine";
import { createLauncher, type LaunchContext, type LauncherSettings } from "../launchers/index.js";
import { SshLauncher } from "../launchers/ssh.js";
import { checkExposure } from "../util/exposure.js";
import { tidyLogs } from "../util/log-files.js";
import { localEngineLimit } from "../util/machine.js";
import { UsageError } from "../util/usage.js";

/** The values of `start` once checked against the machine: the number of engines is known. */
export type ReadyValues = StartValues & { n: number; deadline: number };

/** The launchers' settings among the values (the set ones). */
export function launcherSettings(v: LauncherValues): LauncherSettings {
  const out: LauncherSettings = {};
  for (const k of LAUNCHER_OPTIONS) if (v[k] !== undefined && v[k] !== "") out[k] = v[k];
  return out;
}

/** Launcher settings from `rc.addEngines()` options: the known names, as strings. */
export function settingsFrom(options: Record<string, unknown>): LauncherSettings {
  const out: LauncherSettings = {};
  for (const k of LAUNCHER_OPTIONS) {
    const v = options[k];
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/** The launchers' view of a cluster being started. */
export function launchContext(v: StartValues, paths: ProfilePaths): LaunchContext {
  return {
    profile: v.profile,
    clusterId: v.clusterId,
    engineFile: paths.engineFile,
    logDir: paths.logDir,
    ip: v.ip,
    concurrency: v.concurrency,
    maxMemoryMb: v.maxMemory,
    peerIp: v.peerIp,
  };
}

function assertNotRunning(paths: ProfilePaths): void {
  const st = readClusterState(paths.stateFile);
  if (st && pidAlive(st.hubPid)) {
    const id = paths.clusterId ? ` --cluster-id ${paths.clusterId}` : "";
    throw new ClusterStartError(
      `A cluster is already running for profile \`${paths.profile}\`${paths.clusterId ? ` (cluster id ${paths.clusterId})` : ""} (controller pid ${st.hubPid}). ` +
        `Stop it with \`ptcluster stop --profile ${paths.profile}${id}\`, or start another under a different --profile or --cluster-id.`,
    );
  }
}

/**
 * What `start` checks before anything runs, in the process the user ran (so a bad setting fails
 * there, before a daemon starts): the launcher and its settings, the number of engines against
 * the machine, the exposure of the bind address, no cluster already running under the same name.
 */
export function prepareStart(v: StartValues): { values: ReadyValues; paths: ProfilePaths } {
  // `--timeout` bounds the whole of `start`, from here (the daemon's boot counts).
  const deadline = v.deadline ?? Date.now() + v.timeout;
  const paths = profilePaths(v.profile, v.clusterId);
  const launcher = createLauncher(v.engines, launchContext(v, paths), launcherSettings(v));
  let n = v.n;
  if (n === undefined) {
    // A batch job's size is the user's choice, not this (login) node's core count.
    if (v.engines === "slurm")
      throw new InvalidOptionError("`--engines slurm` needs `-n`: how many engines (Slurm tasks) to run");
    n = launcher instanceof SshLauncher ? launcher.capacity : availableParallelism();
  }
  if (v.engines === "local" && !v.force) {
    const { limit, why } = localEngineLimit();
    if (n > limit)
      throw new UsageError(
        `-n ${n} is more engines than this machine runs well: at most ${limit} local engines (${why}); use a smaller -n, or --force`,
      );
  }
  checkExposure(v.ip, v.curve, v.encryption);
  assertNotRunning(paths);
  ensureProfileDirs(paths);
  // Once per start: the daemon `start` spawns (--ipc-ready) comes here too, after its log exists.
  if (!v.ipcReady) tidyLogs(paths);
  // Local engines share the machine's memory: each gets its part unless --max-memory says otherwise.
  const maxMemory = v.maxMemory ?? (v.engines === "local" ? defaultMaxMemoryMb(n) : undefined);
  return { values: { ...v, n, deadline, maxMemory }, paths };
}
