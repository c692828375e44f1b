import { execa } from "execa";
import { accessSync, constants } from "node:fs";
import { hostname } from "node:os";
import { delimiter, join } from "node:path";
import { ClusterStartError } from "@ptcluster/protocol";
import { isLoopback } from "../util/exposure.js";
import {
  engineArgs,
  engineCommand,
  newTag,
  shellQuote,
  splitArgs,
  type EngineGroup,
  type LaunchContext,
  type Launcher,
  type LauncherSettings,
} from "./launcher.js";
import { readLog } from "./local.js";
import { tunablesShellPrefix } from "./malloc-tunables.js";

/** Job states after which a job runs nothing more (`squeue --states=all` shows them until MinJobAge). */
const TERMINAL = new Set([
  "BOOT_FAIL",
  "CANCELLED",
  "COMPLETED",
  "DEADLINE",
  "FAILED",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "REVOKED",
  "SPECIAL_EXIT",
  "TIMEOUT",
]);

/** How often the queue is asked about the jobs of this controller (one `squeue` for all of them). */
const POLL_MS = 1_000;

/** What one batch job of engines needs: everything the script and the sbatch command line are made of. */
export interface SlurmJobSpec {
  ctx: LaunchContext;
  settings: LauncherSettings;
  tag: string;
  count: number;
  /** The id of task 0's engine: task k asks for id `idBase + k` (SLURM_PROCID), so ids follow task ranks. */
  idBase: number;
  /** The controller host's name: a loopback controller address only works for a job on this host. */
  controllerHost?: string;
}

/**
 * The batch script: checks what would otherwise make engines fail obscurely (a connection file
 * the compute node cannot read, a loopback controller address on another host), then runs one
 * engine per task with `srun`. Every engine registers with the launch tag; the job ends when they
 * all have (the controller stopped them) or when it is cancelled.
 */
export function batchScript(spec: SlurmJobSpec): string {
  const { ctx, settings, tag, count, idBase } = spec;
  const file = ctx.engineFile;
  const engine = [...engineCommand(settings.remoteCommand), ...engineArgs(ctx, tag, file)].map(shellQuote).join(" ");
  const lines = [
    "#!/bin/sh",
    `# ptcluster: ${count} engine${count === 1 ? "" : "s"} of profile ${ctx.profile}${ctx.clusterId ? ` (cluster id ${ctx.clusterId})` : ""}, launch tag ${tag}`,
    `if [ ! -r ${shellQuote(file)} ]; then`,
    `  echo "ptcluster: cannot read the engine connection file ${file.replace(/["$`\\]/g, "\\$&")} on $(hostname): the profile directory must be on a file system the compute nodes share (set PTCLUSTER_DIR to one)" >&2`,
    "  exit 1",
    "fi",
  ];
  if (isLoopback(ctx.ip)) {
    const host = spec.controllerHost ?? hostname();
    lines.push(
      `if [ "\${SLURM_JOB_NUM_NODES:-1}" != 1 ] || [ "$(hostname)" != ${shellQuote(host)} ]; then`,
      `  echo "ptcluster: the controller listens on ${ctx.ip} of ${host.replace(/["$`\\]/g, "\\$&")}, which engines on $(hostname) cannot reach: start it with --ip set to an address the compute nodes reach, and --curve" >&2`,
      "  exit 1",
      "fi",
    );
  }
  // srun takes --cpus-per-task from the job only through the option (Slurm 22.05 stopped reading
  // SLURM_CPUS_PER_TASK). Each task's shell execs its engine, asking for id idBase + its rank.
  // Huge pages for the engines' large buffers, merged with the compute node's GLIBC_TUNABLES (malloc-tunables.ts).
  const perTask = `${tunablesShellPrefix()}exec "$@" --id "$((${idBase} + SLURM_PROCID))"`;
  lines.push(
    `exec srun --ntasks=${count} \${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK} /bin/sh -c ${shellQuote(perTask)} ptcluster-engine ${engine}`,
    "",
  );
  return lines.join("\n");
}

/** The sbatch command line (the script goes on standard input). */
export function sbatchArgs(spec: SlurmJobSpec): string[] {
  const { ctx, settings, count } = spec;
  const name = `ptcluster-${ctx.profile}${ctx.clusterId ? `-${ctx.clusterId}` : ""}`;
  const args = [
    "--parsable",
    `--job-name=${name}`,
    `--ntasks=${count}`,
    `--output=${join(ctx.logDir, "slurm-%j.stdout")}`,
    `--error=${join(ctx.logDir, "slurm-%j.stderr")}`,
  ];
  if (settings.slurmPartition) args.push(`--partition=${settings.slurmPartition}`);
  if (settings.slurmTime) args.push(`--time=${settings.slurmTime}`);
  if (settings.slurmAccount) args.push(`--account=${settings.slurmAccount}`);
  return [...args, ...splitArgs(settings.slurmArgs)];
}

/** The job id of `sbatch --parsable` output (`42`, or `42;cluster` on a multi-cluster setup). */
export function parseJobId(stdout: string): string | undefined {
  return /^(\d+)(?:;\S*)?$/m.exec(stdout.trim())?.[1];
}

/** True if `program` is an executable on PATH (or a path to one). */
function onPath(program: string): boolean {
  const dirs = program.includes("/") ? [""] : (process.env["PATH"] ?? "").split(delimiter).filter(Boolean);
  return dirs.some((d) => {
    try {
      accessSync(d ? join(d, program) : program, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

interface Watched {
  state: string | undefined;
  reason: string | undefined;
  resolve: (state: string) => void;
}

/**
 * Follows the jobs of this process in the queue: one `squeue` about once a second for all of
 * them, and none when there are none. A job has ended when it reached a terminal state or left
 * the queue (`squeue` no longer knows it).
 */
class JobWatcher {
  private readonly jobs = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private polling = false;
  private again = false;

  watch(id: string): { ended: Promise<string>; info: () => { state: string | undefined; reason: string | undefined } } {
    let resolve!: (state: string) => void;
    const ended = new Promise<string>((r) => (resolve = r));
    const w: Watched = { state: undefined, reason: undefined, resolve };
    this.jobs.set(id, w);
    this.schedule(POLL_MS);
    return { ended, info: () => ({ state: w.state, reason: w.reason }) };
  }

  /** Asks the queue soon (after a cancel: its end shows at once). */
  pollSoon(): void {
    this.schedule(50);
  }

  private schedule(ms: number): void {
    if (this.polling) {
      if (ms < POLL_MS) this.again = true;
      return;
    }
    const at = Date.now() + ms;
    if (this.timer && this.dueAt <= at) return; // an earlier poll is already due
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = at;
    // Unref'd: watching never keeps a process alive by itself (the controller lives on its sockets).
    this.timer = setTimeout(() => void this.poll(), ms).unref();
  }

  private end(id: string, state: string): void {
    const w = this.jobs.get(id);
    if (!w) return;
    this.jobs.delete(id);
    w.resolve(state);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    if (!this.jobs.size) return;
    this.polling = true;
    this.again = false;
    const ids = [...this.jobs.keys()];
    try {
      const r = await execa("squeue", ["-h", "--states=all", "-j", ids.join(","), "-o", "%i|%T|%r"], {
        reject: false,
        timeout: 15_000,
        stdin: "ignore",
      });
      if (r.exitCode === 0) {
        const seen = new Set<string>();
        for (const line of r.stdout.split("\n")) {
          const [id, state, reason] = line.trim().split("|");
          const w = id ? this.jobs.get(id) : undefined;
          if (!w || !state) continue;
          seen.add(id as string);
          w.state = state;
          w.reason = reason && reason !== "None" ? reason : undefined;
          if (TERMINAL.has(state)) this.end(id as string, state);
        }
        // Not listed: the job left the queue (ended longer ago than MinJobAge).
        for (const id of ids) if (!seen.has(id)) this.end(id, "ENDED");
      } else if (/invalid job id/i.test(r.stderr)) {
        // Every job asked about is unknown to the controller: all have left the queue.
        for (const id of ids) this.end(id, "ENDED");
      }
      // Anything else (the Slurm controller busy or unreachable): the jobs are still there; ask again.
    } finally {
      this.polling = false;
      if (this.jobs.size) this.schedule(this.again ? 50 : POLL_MS);
    }
  }
}

let watcher: JobWatcher | undefined;

/**
 * Starts engines as one Slurm batch job per launch: `sbatch --ntasks=N` a script that runs the
 * engines with `srun`, one per task (task k asks for engine id `idBase + k`, so on a fresh cluster
 * ids are the task ranks). The compute nodes read the engine connection file by its
 * path and write the job's output into the profile's log directory, so the profile directory
 * must be on a file system they share (as home directories are on HPC clusters). The job is the
 * launch: when it ends (cancelled, time limit, node failure) the controller drops its engines at
 * once; stopping the cluster cancels it, and `ptcluster stop` cancels it even without the controller.
 */
export class SlurmLauncher implements Launcher {
  readonly name = "slurm";

  constructor(
    private readonly ctx: LaunchContext,
    private readonly settings: LauncherSettings,
  ) {
    for (const program of ["sbatch", "squeue", "scancel"]) {
      if (!onPath(program)) {
        throw new ClusterStartError(
          `\`--engines slurm\` needs Slurm's \`${program}\` on PATH: run ptcluster on a host of the Slurm cluster (a login node), with its client commands installed.`,
        );
      }
    }
  }

  async start(count: number, opts: { idBase?: number } = {}): Promise<EngineGroup[]> {
    return count > 0 ? [await this.submit(count, opts.idBase ?? 0)] : [];
  }

  private async submit(count: number, idBase: number): Promise<EngineGroup> {
    const tag = newTag("slurm");
    const spec: SlurmJobSpec = { ctx: this.ctx, settings: this.settings, tag, count, idBase };
    const r = await execa("sbatch", sbatchArgs(spec), { input: batchScript(spec), reject: false, timeout: 60_000 });
    const submitOutput = r.stderr.trim();
    const id = r.exitCode === 0 ? parseJobId(r.stdout) : undefined;
    if (id === undefined) {
      const how = r.timedOut
        ? "timed out"
        : r.failed && r.exitCode === undefined
          ? (r.shortMessage ?? "could not run")
          : `exit code ${r.exitCode}`;
      throw new ClusterStartError(
        `sbatch failed (${how}) submitting ${count} engine${count === 1 ? "" : "s"}${submitOutput || r.stdout.trim() ? `:\n${submitOutput || r.stdout.trim()}` : "."}`,
      );
    }
    const errFile = join(this.ctx.logDir, `slurm-${id}.stderr`);
    const outFile = join(this.ctx.logDir, `slurm-${id}.stdout`);
    watcher ??= new JobWatcher();
    const w = watcher;
    const job = w.watch(id);
    let ended = false;
    const exited = job.ended.then((state) => {
      ended = true;
      return state;
    });
    const scancel = (args: string[]) =>
      execa("scancel", [...args, id], { reject: false, timeout: 15_000, stdin: "ignore" }).then(() => w.pollSoon());
    return {
      tag,
      count,
      where: `slurm job ${id}`,
      pids: [],
      job: { launcher: "slurm", id },
      exited,
      output: () => {
        const { state, reason } = job.info();
        const text = [submitOutput, readLog(errFile).trim(), readLog(outFile).trim()].filter(Boolean);
        if (!ended && (state === "PENDING" || state === "CONFIGURING")) {
          text.push(
            `job ${id} is still ${state}${reason ? ` (${reason})` : ""} in the queue: its engines have not started yet (\`--timeout\` bounds the wait; \`squeue -j ${id}\` shows it)`,
          );
        }
        return text.join("\n");
      },
      kill: (signal = "SIGTERM") => {
        if (ended) return;
        // SIGKILL: kill every process of the job at once, then cancel it (a pending job is only cancelled).
        if (signal === "SIGKILL") void scancel(["--full", "--signal=KILL"]).then(() => scancel([]));
        else void scancel([]);
      },
      relaunch: async (o = {}) => [await this.submit(count, o.idBase ?? idBase)],
    };
  }
}
