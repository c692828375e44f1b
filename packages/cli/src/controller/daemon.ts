import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterStartError, type ProfilePaths, type StartedController, type StartSummary } from "@ptcluster/protocol";
import { argsOf } from "../options.js";
import { binPath } from "../util/cli-error.js";
import { tunablesEnv } from "../launchers/malloc-tunables.js";
import { holdOwnerLink, releaseOwnerLink } from "./owner-link.js";
import type { ReadyValues } from "./prepare.js";

/** What the daemonised controller reports to the process that spawned it, over IPC. */
export type Report =
  | { type: "ready"; summary: StartSummary; shortfall?: string; missed?: string | undefined }
  | { type: "failed"; message: string };

/**
 * Starts the controller as a detached process (`ptcluster start --foreground --ipc-ready` with the
 * same checked values, written back as flags) and returns once its engines registered, or
 * `--timeout` passed with some of them registered (`shortfall` says how many).
 */
export function spawnDaemon(v: ReadyValues, paths: ProfilePaths): Promise<StartedController> {
  const errFile = join(paths.logDir, `controller${paths.clusterId ? `-${paths.clusterId}` : ""}.stderr`);
  const fd = openSync(errFile, "w", 0o600);
  const args = [binPath(), "start", ...argsOf("start", { ...v, foreground: true, ipcReady: true, json: false })];
  // `detached: true` here gives the controller a session of its own (Ctrl-C at the owner's terminal
  // does not reach it); `v.detached` says whether it outlives its owner: if not, its stdin is the
  // owner's lifeline (owner-link.ts).
  const child = spawn(process.execPath, args, {
    detached: true,
    // Huge pages for the large buffers it forwards or keeps (launchers/malloc-tunables.ts).
    env: { ...process.env, ...tunablesEnv() },
    stdio: [v.detached ? "ignore" : "pipe", "ignore", fd, "ipc"],
  });
  closeSync(fd);
  if (child.stdin) holdOwnerLink(v.profile, v.clusterId, child.stdin);
  const readErr = () => {
    try {
      return readFileSync(errFile, "utf8").trim();
    } catch {
      return "";
    }
  };
  let failed: ClusterStartError | undefined;
  const started = new Promise<StartedController>((resolve, reject) => {
    // The controller ends its own wait at --timeout; this is the net under it (a controller that hangs before it can tell).
    const net = setTimeout(
      () => {
        child.kill("SIGTERM");
        reject(
          new ClusterStartError(
            `The controller did not report within ${v.timeout} ms (--timeout) and 10 s more; it was stopped.${readErr() ? `\n${readErr()}` : ""}`,
          ),
        );
      },
      v.deadline - Date.now() + 10_000,
    );
    child.on("message", (m: Report) => {
      if (m.type === "ready") {
        clearTimeout(net);
        child.removeAllListeners("exit");
        child.disconnect();
        child.unref();
        resolve({ summary: m.summary, shortfall: m.shortfall, missed: m.missed });
      } else if (m.type === "failed") {
        // The controller now stops what it started: answer once it has exited (no process left behind), within 5 s.
        failed = new ClusterStartError(m.message);
        clearTimeout(net);
        setTimeout(() => reject(failed), 5_000).unref();
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(net);
      if (failed) return reject(failed);
      const err = readErr();
      reject(
        new ClusterStartError(
          `The controller exited (${signal ?? `code ${code}`}) before the cluster was ready${err ? `:\n${err}` : "."}`,
        ),
      );
    });
  });
  // A controller that did not start has nothing to follow.
  return started.catch((err: unknown) => {
    releaseOwnerLink(v.profile, v.clusterId);
    throw err;
  });
}
