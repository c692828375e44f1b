import type { CurveClientKeys, Logger, MpiPlace, ShmConfig } from "@ptcluster/protocol";

/** How an engine is started (`runEngine` fills it from the connection file and flags). */
export interface EngineOptions {
  /** Controller address and engine port, and the cluster key. */
  host: string;
  port: number;
  key: Buffer;
  /** How many tasks run at once (default 1). */
  concurrency?: number;
  /** Ask for this engine id (MPI rank); honoured when free. */
  requestedId?: number;
  /** The launch this engine belongs to (given by launchers). */
  tag?: string;
  /** This engine's place in an MPI job, reported to the controller. */
  mpi?: MpiPlace;
  /** Give up registering after this long (ms). */
  registerTimeoutMs?: number;
  /** Exit when the controller has been silent this long (ms). */
  orphanTimeoutMs?: number;
  /** How long a timed-out or cancelled task may take to stop before its executor is replaced (ms, default 1000). */
  graceMs?: number;
  /** Memory limit of the executor thread in MB, heap and off-heap (default: unbounded; `runEngine` always sets one). */
  maxMemoryMb?: number;
  /** Largest message the controller accepts (bytes, default 1 GiB): larger results fail instead. */
  maxMessageBytes?: number;
  /** CURVE keys, when the cluster runs with `--curve`. */
  curve?: CurveClientKeys;
  /** On the controller's host: large values through shared-memory files (`probeShm`). */
  shm?: ShmConfig;
  /** Address for the `engine.comm` peer endpoint (default: the one this host reaches the controller from). */
  peerIp?: string;
  logger: Logger;
}
