import { rmSync } from "node:fs";
import { hostname } from "node:os";
import { connect } from "@ptcluster/client";
import {
  NoClusterError,
  listClusterStates,
  pidAlive,
  profilePaths,
  readClusterState,
  removeShmDir,
  type ClusterState,
} from "@ptcluster/protocol";

export interface StopOptions {
  profile: string;
  clusterId: string;
  all: boolean;
  /** ms to wait for a graceful exit before SIGTERM, then as long again before SIGKILL */
  grace: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let alive = pids.filter(pidAlive);
  while (alive.length && Date.now() < deadline) {
    await sleep(10);
    alive = alive.filter(pidAlive);
  }
  return alive;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Stops one cluster: asks its controller to shut down (which stops the engines), then makes sure,
 * by pid, that every process of the cluster is gone: SIGTERM, then SIGKILL.
 */
export async function stopCluster(
  profile: string,
  clusterId: string,
  graceMs: number,
): Promise<{ stopped: boolean; pids: number[] }> {
  const paths = profilePaths(profile, clusterId);
  const state: ClusterState | undefined = readClusterState(paths.stateFile);
  let asked = false;
  try {
    const rc = await connect({ profile, clusterId, timeout: 1_500 });
    const live = await rc.status().catch(() => undefined);
    // Engines on other hosts have pids of their own machines: only this host's are signalled here.
    const here = hostname();
    const pids = new Set<number>([
      ...(state?.enginePids ?? []),
      ...(live?.engines.filter((e) => e.host === here).map((e) => e.pid) ?? []),
    ]);
    if (state) state.enginePids = [...pids];
    await rc.shutdown();
    asked = true;
  } catch (err) {
    if (err instanceof NoClusterError && !state) throw err;
  }
  const pids = state ? [state.hubPid, ...state.enginePids].filter((p) => p !== process.pid) : [];
  let alive = await waitGone(pids, asked ? graceMs : 0);
  if (alive.length) {
    signalAll(alive, "SIGTERM");
    alive = await waitGone(alive, graceMs);
  }
  if (alive.length) {
    signalAll(alive, "SIGKILL");
    await waitGone(alive, 1_000);
  }
  // Batch jobs (Slurm) outlive their controller: cancel them by id. Imported only then: the
  // launchers bring execa, a good part of this command's start-up time.
  if (state?.jobs?.length) {
    const { cancelJob } = await import("../launchers/index.js");
    await Promise.all(state.jobs.map((j) => cancelJob(j)));
  }
  for (const f of [paths.stateFile, paths.clientFile, paths.engineFile]) rmSync(f, { force: true });
  // What a killed controller, client or engine left in the shared-memory folder goes too.
  removeShmDir(paths);
  return { stopped: asked || pids.length > 0, pids };
}

/** `ptcluster stop` */
export async function stop(o: StopOptions): Promise<void> {
  if (o.all) {
    const states = listClusterStates();
    for (const { state } of states) {
      await stopCluster(state.profile, state.clusterId, o.grace);
      process.stdout.write(
        `Stopped cluster of profile ${state.profile}${state.clusterId ? ` (cluster id ${state.clusterId})` : ""}.\n`,
      );
    }
    if (!states.length) process.stdout.write("No clusters were running.\n");
    return;
  }
  const r = await stopCluster(o.profile, o.clusterId, o.grace);
  process.stdout.write(
    `Stopped cluster of profile ${o.profile}${o.clusterId ? ` (cluster id ${o.clusterId})` : ""} (${r.pids.length} processes).\n`,
  );
}
