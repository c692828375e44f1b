import type { CurveMaterial, Logger, SchedulerScheme } from "@ptcluster/protocol";

/** The controller's options (`ptcluster start` and `ptcluster hub` fill them from their flags). */
export interface HubOptions {
  profile?: string;
  clusterId?: string;
  /** Interface to bind (default 127.0.0.1: loopback only). */
  ip?: string;
  /** Fixed ports (for firewalls); unset or 0: any free port. Engines need `engine`, clients `client` and `notify`. */
  ports?: { client?: number | undefined; engine?: number | undefined; notify?: number | undefined };
  /** Address written into connection files for peers to connect to (default: `ip`, or this host's name for a wildcard bind). */
  location?: string;
  /** Cluster key (32 bytes). */
  key: Buffer;
  /** Engines and controller heartbeat period (ms). */
  heartbeatMs?: number;
  /** Heartbeats an engine may miss before it is declared dead. */
  missedHeartbeats?: number;
  /** Load-balancing scheme (default `leastload`). */
  scheme?: SchedulerScheme;
  /**
   * A client silent this long (ms, default 30 s) is presumed gone and its unfinished tasks are
   * cancelled. Clients ping every heartbeat period from their event loop, so a client script that
   * blocks its event loop for longer than this loses its work, running tasks included.
   */
  clientTimeoutMs?: number;
  /** How long results of a client that went away are kept for `rc.getResult` (ms, default 10 min). */
  resultTtlMs?: number;
  /**
   * CURVE encryption (`--curve`): the controller's key pair and the client and engine pairs it
   * writes into the connection files; `allowedKeys` adds public keys it also accepts.
   */
  curve?: CurveMaterial & { allowedKeys?: string[] };
  /** Largest message a client or engine may send (bytes, default 1 GiB); larger frames drop the connection before they are buffered. */
  maxMessageBytes?: number;
  /**
   * Starts more engines on request (`ptcluster engines`), resolving once they registered. Given
   * by `ptcluster start`, which owns the launchers; a bare `ptcluster hub` has none.
   */
  /**
   * Binary values of this many bytes or more go between a client and an engine of this host
   * through a file in a private shared-memory folder (0 or unset: never).
   */
  shmThreshold?: number;
  /** Most bytes shared state may hold (`--max-shared-mb`; default {@link DEFAULT_MAX_SHARED_BYTES}). */
  maxSharedBytes?: number;
  launch?: (req: { n: number; launcher: string; options: Record<string, unknown> }) => Promise<unknown>;
  logger: Logger;
  /** The file `logger` writes to, for `ptcluster status` to point at. */
  logFile?: string;
}

/** Shared state the controller holds by default, at most: 1 GiB (`--max-shared-mb`). */
export const DEFAULT_MAX_SHARED_BYTES = 1 << 30;
