/**
 * Engines (and the controller) are started with glibc's `malloc.hugetlb=1` tunable: their large
 * buffers (a value read from shared memory, an `engine.comm` result array) then come from
 * transparent huge pages, and the first touch of each 2 MiB costs one fault instead of 512. On
 * this project's VM a 50 MiB copy into a fresh buffer took 40-45 ms without it and 15-23 ms with
 * it (docs/architecture.md, "Same-host data"). Processes of other libcs ignore the variable.
 *
 * Ours goes FIRST in `GLIBC_TUNABLES`: glibc applies the entries in order, so a user's own
 * `glibc.malloc.hugetlb` (set where the engines start) wins. `PTCLUSTER_HUGEPAGES=0` in the
 * environment of `ptcluster start` (or `ptcluster engines`) leaves the variable as it is.
 */
export const HUGEPAGES_ENV = "PTCLUSTER_HUGEPAGES";
export const HUGEPAGES_TUNABLE = "glibc.malloc.hugetlb=1";

/** Whether spawned processes get the tunable (on unless `PTCLUSTER_HUGEPAGES=0`). */
export function hugePagesOn(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[HUGEPAGES_ENV] !== "0";
}

/** The `GLIBC_TUNABLES` for a process this one spawns: ours, then whatever the user set. */
export function mergedTunables(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const user = env["GLIBC_TUNABLES"];
  // A controller we started passes its own on to its engines: once is enough.
  if (!hugePagesOn(env) || user === HUGEPAGES_TUNABLE || user?.startsWith(`${HUGEPAGES_TUNABLE}:`)) return user;
  return user ? `${HUGEPAGES_TUNABLE}:${user}` : HUGEPAGES_TUNABLE;
}

/** Environment additions for a child started on this host (the local launcher, mpiexec, the daemon). */
export function tunablesEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const merged = mergedTunables(env);
  return merged === undefined ? {} : { GLIBC_TUNABLES: merged };
}

/**
 * A shell prefix for a command run on another host (ssh, a Slurm batch script): it merges with the
 * `GLIBC_TUNABLES` set THERE, which this process cannot see. Empty when turned off.
 */
export function tunablesShellPrefix(env: NodeJS.ProcessEnv = process.env): string {
  if (!hugePagesOn(env)) return "";
  return `GLIBC_TUNABLES=${HUGEPAGES_TUNABLE}\${GLIBC_TUNABLES:+:$GLIBC_TUNABLES} `;
}
