import { availableParallelism, totalmem } from "node:os";

/** Local engines per core that `start` allows without `--force`. */
const ENGINES_PER_CORE = 4;
/** Memory one local engine is counted at: an idle engine is about 75 MB resident (measured), and tasks need room. */
const MB_PER_ENGINE = 100;

/** The machine-size rule, as `--help` and the refusal say it. */
export const MACHINE_RULE = `Local engines are limited to ${ENGINES_PER_CORE} per core and one per ${MB_PER_ENGINE} MB of memory unless --force`;

/**
 * The most local engines `start` runs without `--force`: beyond this many the machine is
 * overloaded (processes start so slowly they miss `--timeout`) or out of memory. Cores are
 * `os.availableParallelism()`, so a CPU affinity mask or a container's cpuset counts.
 */
export function localEngineLimit(): { limit: number; why: string } {
  const cores = availableParallelism();
  const mb = Math.floor(totalmem() / 2 ** 20);
  const byCores = ENGINES_PER_CORE * cores;
  const byMemory = Math.max(1, Math.floor(mb / MB_PER_ENGINE));
  return byCores <= byMemory
    ? { limit: byCores, why: `${ENGINES_PER_CORE} per core, ${cores} core${cores === 1 ? "" : "s"}` }
    : { limit: byMemory, why: `one per ${MB_PER_ENGINE} MB of memory, ${mb} MB` };
}
