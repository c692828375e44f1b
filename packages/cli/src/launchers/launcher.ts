/** One engine a launcher started. */
export interface LaunchedEngine {
  pid: number;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** What the engine wrote to stderr so far (for reporting start failures). */
  output(): string;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts engines somewhere; `local` today, `ssh`, `mpi` and `slurm` behind the same interface. */
export interface Launcher {
  readonly name: string;
  start(count: number): LaunchedEngine[];
}
