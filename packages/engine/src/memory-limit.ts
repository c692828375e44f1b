import { availableParallelism, totalmem } from "node:os";

/** Share of a machine's memory its engines may use together when no `--max-memory` is given. */
export const DEFAULT_MEMORY_SHARE = 0.75;
/** The smallest default limit (MB): below it an executor has little room beyond its own code (tsx, compiled functions). */
const FLOOR_MB = 128;

/** Memory of this machine (bytes), or of its container when a cgroup limits it. */
export function machineMemory(): number {
  const total = totalmem();
  // 0 or undefined without a limit, a huge number on some systems: either way not below the machine's.
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return constrained ? Math.min(total, constrained) : total;
}

/**
 * The memory limit of each engine's executor when none is given (MB): `DEFAULT_MEMORY_SHARE` of
 * the machine's memory, shared among the engines it runs. `ptcluster start` counts its local
 * engines (`-n`); an engine started any other way counts one per core (the default `-n`).
 */
export function defaultMaxMemoryMb(engines = availableParallelism(), memory = machineMemory()): number {
  const mb = (memory / 2 ** 20) * DEFAULT_MEMORY_SHARE;
  return Math.max(FLOOR_MB, Math.floor(mb / Math.max(1, engines)));
}
