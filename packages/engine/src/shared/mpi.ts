import type { MpiPlace } from "@ptcluster/protocol";

/**
 * The MPI rank and size of this process, from the variables MPI launchers set: Open MPI
 * (`OMPI_COMM_WORLD_*`), PMIx, MPICH and Intel MPI (`PMI_*`), MVAPICH2 (`MV2_COMM_WORLD_*`).
 * Undefined outside an MPI job.
 */
export function mpiFromEnv(env: NodeJS.ProcessEnv = process.env): MpiPlace | undefined {
  const pairs: Array<[string, string]> = [
    ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"],
    ["PMIX_RANK", "OMPI_COMM_WORLD_SIZE"],
    ["PMI_RANK", "PMI_SIZE"],
    ["MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"],
  ];
  for (const [r, s] of pairs) {
    const rank = Number(env[r]);
    const size = Number(env[s]);
    if (
      env[r] !== undefined &&
      env[r] !== "" &&
      Number.isInteger(rank) &&
      rank >= 0 &&
      Number.isInteger(size) &&
      size > rank
    )
      return { rank, size };
  }
  return undefined;
}
