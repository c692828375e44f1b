import type { StartValues } from "./cluster-options.js";

// The contract of `@ptcluster/cli/controller`, the declared entry point that starts and stops
// daemonised controllers. `@ptcluster/client` reaches it by a dynamic import (the cli depends on
// the client, so a static import the other way would be a cycle); the types live here, where both
// sides see them, and the cli's module is checked against them (`satisfies ControllerEntry`).

/** A cluster `start` brought up: what `ptcluster start --json` prints. */
export interface StartSummary {
  profile: string;
  clusterId: string;
  /** engine ids registered at start, ascending */
  ids: number[];
  clientFile: string;
  engineFile: string;
  controllerPid: number;
  enginePids: number[];
}

/** A daemonised controller, running. */
export interface StartedController {
  summary: StartSummary;
  /**
   * Set when `timeout` passed with only some engines registered: the cluster runs with those, and
   * this says how many of how many and how to add engines or stop it.
   */
  shortfall?: string | undefined;
  /** With `shortfall`: what happened, without the command line's advice nor the engines' output (which `shortfall` ends with). */
  missed?: string | undefined;
}

/** What `@ptcluster/cli/controller` exports. */
export interface ControllerEntry {
  /**
   * Starts a controller as a detached process (as `ptcluster start` does, so `ptcluster stop` and
   * `list` see it), launches its engines and resolves once they registered. Rejects with a
   * `ClusterStartError` (none registered, the controller failed) or an `InvalidOptionError`.
   * Unless `values.detached`, the controller ends when the calling process ends, however it ends
   * (it follows a pipe that process holds), and stops its engines.
   */
  startController(values: StartValues): Promise<StartedController>;
  /** Stops a cluster (`ptcluster stop`): controller, then every process by pid; resolves once they exited. */
  stopController(target: { profile: string; clusterId: string; graceMs?: number }): Promise<void>;
}

/** The specifier the client imports the entry from. */
export const CONTROLLER_ENTRY = "@ptcluster/cli/controller";
