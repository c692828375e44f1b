import { execa } from "execa";
import { join } from "node:path";
import {
  engineArgs,
  engineCommand,
  newTag,
  splitArgs,
  type EngineGroup,
  type LaunchContext,
  type Launcher,
  type LauncherSettings,
} from "./launcher.js";
import { readLog } from "./local.js";
import { tunablesEnv } from "./malloc-tunables.js";

/**
 * Starts engines as the ranks of one `mpiexec` job: `mpiexec -n N [--mpi-args] ptcluster engine`.
 * Each engine reads its rank from the MPI launcher's environment, reports it (`engine.mpi`,
 * `ptcluster status`) and asks for id `idBase + rank`, so on a fresh cluster ids are the ranks.
 * The job lives and dies as one: when mpiexec ends (MPI aborts the job when a rank dies), all
 * its engines are gone, and a replacement is a new job of the same size.
 */
export class MpiLauncher implements Launcher {
  readonly name = "mpi";
  constructor(
    private readonly ctx: LaunchContext,
    private readonly settings: LauncherSettings,
  ) {}

  async start(count: number, opts: { idBase?: number } = {}): Promise<EngineGroup[]> {
    return count > 0 ? [this.startJob(count, opts.idBase ?? 0)] : [];
  }

  private startJob(count: number, idBase: number): EngineGroup {
    const tag = newTag("mpi");
    const errFile = join(this.ctx.logDir, `engine-${tag}.stderr`);
    const outFile = join(this.ctx.logDir, `engine-${tag}.stdout`);
    const args = [
      "-n",
      String(count),
      ...splitArgs(this.settings.mpiArgs),
      ...engineCommand(this.settings.remoteCommand),
      ...engineArgs(this.ctx, tag, this.ctx.engineFile, ["--id-base", String(idBase)]),
    ];
    // Huge pages for the engines' large buffers (malloc-tunables.ts): mpiexec hands its environment to
    // the ranks it starts on this host; ranks elsewhere get it with the MPI's own export option (Open MPI `-x GLIBC_TUNABLES`).
    const env: Record<string, string> = tunablesEnv();
    // Open MPI refuses to run as root unless told; harmless for other MPIs (containers, CI run as root).
    if (process.getuid?.() === 0)
      Object.assign(env, { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" });
    const child = execa(this.settings.mpiexec || "mpiexec", args, {
      stdin: "ignore",
      stdout: { file: outFile },
      stderr: { file: errFile },
      reject: false,
      cleanup: false,
      env,
    });
    const exited = child.then(
      (r) =>
        (r.failed && r.exitCode === undefined && !r.signal
          ? `failed to start: ${r.shortMessage}`
          : (r.signal ?? r.exitCode ?? 0)) as number | string,
    );
    return {
      tag,
      count,
      where: `mpiexec -n ${count}`,
      pids: child.pid ? [child.pid] : [],
      exited,
      output: () => {
        const err = readLog(errFile);
        return err || (child.pid ? "" : `could not run ${this.settings.mpiexec || "mpiexec"}`);
      },
      // mpiexec forwards SIGTERM to every rank; SIGKILL of mpiexec alone would orphan them.
      kill: (signal = "SIGTERM") => void child.kill(signal === "SIGKILL" ? "SIGTERM" : signal),
      relaunch: async (o = {}) => [this.startJob(count, o.idBase ?? idBase)],
    };
  }
}
