import { fileURLToPath } from "node:url";

const ENGINE_MAIN = fileURLToPath(import.meta.resolve("@ptcluster/engine/main"));

/** What every launcher needs to start engines of one cluster. */
export interface LaunchContext {
  profile: string;
  clusterId: string;
  /** The engine connection file (0600): handed to engines, never left readable by others. */
  engineFile: string;
  /** The profile's log directory: launchers keep their engines' output here. */
  logDir: string;
  /** The address the controller binds (a launcher for other hosts refuses a loopback one). */
  ip: string;
  /** Tasks each engine runs at once. */
  concurrency: number;
  /** Heap limit of each engine's executor (MB). */
  maxMemoryMb?: number | undefined;
  /** Exit after the controller has been silent this long (ms). */
  orphanTimeoutMs?: number | undefined;
  /** Address of each engine's `engine.comm` peer endpoint (`--peer-ip`). */
  peerIp?: string | undefined;
}

/**
 * Settings of the launchers, as `ptcluster start` and `ptcluster engines` take them (the flags
 * in kebab-case: `--ssh-options`, `--slurm-partition`, …) and `rc.addEngines()` in camelCase.
 */
export interface LauncherSettings {
  /** ssh: `host[:count],…`, as `b:4,c:4` or `user@b:2` */
  hosts?: string | undefined;
  /** ssh: the ssh program (default `ssh`) */
  sshCommand?: string | undefined;
  /** ssh: extra ssh arguments, split on spaces (`-i key -p 2222`) */
  sshOptions?: string | undefined;
  /** ssh, slurm: how to run `ptcluster` where the engines run (default: this node and this ptcluster, by absolute path: a shared file system) */
  remoteCommand?: string | undefined;
  /** mpi: the mpiexec program (default `mpiexec`) */
  mpiexec?: string | undefined;
  /** mpi: extra mpiexec arguments, split on spaces */
  mpiArgs?: string | undefined;
  /** slurm: partition (`--partition`) */
  slurmPartition?: string | undefined;
  /** slurm: time limit (`--time`, as `01:00:00`) */
  slurmTime?: string | undefined;
  /** slurm: account to charge (`--account`) */
  slurmAccount?: string | undefined;
  /** slurm: extra sbatch arguments, split on spaces */
  slurmArgs?: string | undefined;
  /** every launcher: the engines' `engine.comm` peer endpoint address (`--peer-ip`), over the cluster's */
  peerIp?: string | undefined;
}

/**
 * One launch: engines started together by one launcher command (one local process, one ssh
 * session, one mpiexec, one batch job). Every engine of the group registers with `tag`, so when
 * the launch ends (`exited`) the controller knows at once which engines are gone.
 */
export interface EngineGroup {
  readonly tag: string;
  /** How many engines this launch starts. */
  readonly count: number;
  /** Where, for messages: `local`, `ssh b`, `mpiexec`, `slurm job 42`. */
  readonly where: string;
  /** Processes of this machine that belong to the launch (the engine, ssh, mpiexec). */
  readonly pids: number[];
  /** A batch job to cancel when the cluster stops (`ptcluster stop` cancels it even without the controller). */
  readonly job?: { launcher: string; id: string } | undefined;
  /** Resolves with the exit code (or signal name, or job state) when the launch has ended. */
  readonly exited: Promise<number | string>;
  /** What the launch wrote to stderr so far (for reporting start failures). */
  output(): string;
  /** Ends the launch: its engines stop (a signal, a closed ssh session, a cancelled job). */
  kill(signal?: NodeJS.Signals): void;
  /** Starts the same launch again (a replacement after a death), in the same place; `idBase` as for `Launcher.start`. */
  relaunch(opts?: { idBase?: number }): Promise<EngineGroup[]>;
}

/** Starts engines somewhere: `local`, `ssh`, `mpi` and `slurm` behind one interface. */
export interface Launcher {
  readonly name: string;
  /**
   * Starts `count` engines; resolves once the launch commands are under way (not registered:
   * `ptcluster start` waits for registrations). `idBase` is the first free engine id, for
   * launchers whose engines ask for ids (MPI ranks).
   */
  start(count: number, opts?: { idBase?: number }): Promise<EngineGroup[]>;
}

/** Options of `ptcluster engine` for an engine of a launch. */
export function engineArgs(ctx: LaunchContext, tag: string, file: string, extra: string[] = []): string[] {
  const args = ["--file", file, "--concurrency", String(ctx.concurrency), "--launch-tag", tag];
  if (ctx.orphanTimeoutMs !== undefined) args.push("--orphan-timeout", String(ctx.orphanTimeoutMs));
  if (ctx.maxMemoryMb !== undefined) args.push("--max-memory", String(ctx.maxMemoryMb));
  if (ctx.peerIp) args.push("--peer-ip", ctx.peerIp);
  return [...args, ...extra];
}

/**
 * The command that runs one engine, before its options: `remoteCommand engine` when given (as
 * `npx ptcluster` on hosts with their own install), else this Node and ptcluster's lean engine
 * entry point by absolute path (the same path on every host: a shared file system, as on HPC).
 */
export function engineCommand(remoteCommand?: string): string[] {
  const custom = splitArgs(remoteCommand);
  return custom.length ? [...custom, "engine"] : [process.execPath, ENGINE_MAIN];
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Splits an option string on whitespace, honouring single and double quotes. */
export function splitArgs(s: string | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? m[3] ?? ""));
  return out;
}

let tagSeq = 0;
/** A launch tag unique to this controller process. */
export function newTag(kind: string): string {
  return `${kind}-${process.pid}-${++tagSeq}`;
}
