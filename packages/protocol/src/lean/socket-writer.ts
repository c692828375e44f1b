import type { Socket } from "node:net";

/** The flushes of writers holding writes of this turn (each takes itself out when it runs). */
const pendingFlushes = new Set<() => void>();

/**
 * Writes now what every writer of this thread holds for the end of the turn. For a thread about
 * to run code that may hold it for long (an executor starting a task): what it has written would
 * otherwise wait for that code to end.
 */
export function flushPendingWrites(): void {
  for (const flush of pendingFlushes) flush();
}

/** Writes of one turn go out in one system call (a collective's call check and its data, say). */
export function writer(sock: Socket): (buf: Buffer) => void {
  let pending: Buffer[] = [];
  let bytes = 0;
  const flush = () => {
    // Already written by `flushPendingWrites` (this is the turn's own, scheduled call).
    if (!pendingFlushes.delete(flush)) return;
    const out = pending;
    pending = [];
    if (sock.destroyed) return void (bytes = 0);
    if (out.length === 1) sock.write(out[0] as Buffer);
    else if (bytes <= 64 * 1024) sock.write(Buffer.concat(out, bytes));
    else {
      sock.cork();
      for (const b of out) sock.write(b);
      sock.uncork();
    }
    bytes = 0;
  };
  return (buf) => {
    if (sock.destroyed) return;
    if (pending.push(buf) === 1) {
      pendingFlushes.add(flush);
      process.nextTick(flush);
    }
    bytes += buf.length;
  };
}
