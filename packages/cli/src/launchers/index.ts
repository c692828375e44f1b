import { execa } from "execa";
import { InvalidOptionError } from "@ptcluster/protocol";
import type { LaunchContext, Launcher, LauncherSettings } from "./launcher.js";
import { LocalLauncher } from "./local.js";
import { SlurmLauncher } from "./slurm.js";
import { SshLauncher } from "./ssh.js";
import { MpiLauncher } from "./mpi.js";

export type { EngineGroup, LaunchContext, Launcher, LauncherSettings } from "./launcher.js";

/** The launchers `--engines` names. */
export const LAUNCHERS = ["local", "ssh", "mpi", "slurm"] as const;

/** The launcher called `name`, set up for one cluster. */
export function createLauncher(name: string, cluster: LaunchContext, settings: LauncherSettings): Launcher {
  // `ptcluster engines --peer-ip` gives the engines it adds an address of their own.
  const ctx = settings.peerIp ? { ...cluster, peerIp: settings.peerIp } : cluster;
  switch (name) {
    case "local":
      return new LocalLauncher(ctx);
    case "ssh":
      return new SshLauncher(ctx, settings);
    case "slurm":
      return new SlurmLauncher(ctx, settings);
    case "mpi":
      return new MpiLauncher(ctx, settings);
    default:
      throw new InvalidOptionError(`Expected \`--engines\` to be one of ${LAUNCHERS.join(", ")}, got \`${name}\``);
  }
}

/** Cancels a batch job a launcher left in the cluster's state file (`ptcluster stop` without a controller). */
export async function cancelJob(job: { launcher: string; id: string }): Promise<void> {
  if (job.launcher === "slurm" && /^\d+(_\d+)?$/.test(job.id)) {
    await execa("scancel", [job.id], { reject: false, timeout: 10_000, stdin: "ignore" });
  }
}
