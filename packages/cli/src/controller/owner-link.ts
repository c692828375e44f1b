import type { Writable } from "node:stream";

// The lifeline between the process that ran `startCluster()` (its owner) and the controller it
// started: the controller's stdin is a pipe whose only writing end the owner holds and never
// writes to. However the owner ends (returns, `process.exit()`, an uncaught error, SIGINT, SIGTERM,
// SIGKILL, the OOM killer), the kernel closes that end and the controller reads EOF: no signal
// handler in the owner (nothing changes how it exits, or how the user's own handlers behave), no
// polling, and no pid to be reused by another process. The controller then stops as `ptcluster
// stop` would stop it, engines included. libuv opens the pipe close-on-exec and passes it to no
// other child, so nothing but the owner holds it. `detached: true` spawns without the pipe.

/** The owner's ends of the pipes of the controllers it started and has not stopped, by cluster. */
const held = new Map<string, Writable>();

const keyOf = (profile: string, clusterId: string) => `${profile}\0${clusterId}`;

/**
 * Keeps the owner's end of a controller's stdin open for as long as this process lives (or until
 * {@link releaseOwnerLink}), without keeping the process alive for it.
 */
export function holdOwnerLink(profile: string, clusterId: string, stdin: Writable): void {
  // Never written to; an error (the controller gone) only means there is nothing left to hold.
  stdin.on("error", () => undefined);
  (stdin as Writable & { unref?: () => void }).unref?.();
  held.set(keyOf(profile, clusterId), stdin);
}

/** Closes the owner's end of a cluster's pipe (once it was stopped): the fd is not kept for nothing. */
export function releaseOwnerLink(profile: string, clusterId: string): void {
  const key = keyOf(profile, clusterId);
  held.get(key)?.destroy();
  held.delete(key);
}

/**
 * In the controller: calls `onGone` once its stdin ends, that is once the owner that started it
 * is gone. Data on it (there is none) is discarded.
 */
export function followOwner(onGone: () => void): void {
  let gone = false;
  const end = () => {
    if (gone) return;
    gone = true;
    onGone();
  };
  process.stdin.on("data", () => undefined);
  process.stdin.once("end", end);
  process.stdin.once("error", end);
  process.stdin.resume();
}
