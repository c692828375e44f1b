import type { Socket } from "node:net";

/** Writes of one turn go out in one system call (a collective's call check and its data, say). */
export function writer(sock: Socket): (buf: Buffer) => void {
  let pending: Buffer[] = [];
  let bytes = 0;
  const flush = () => {
    const out = pending;
    pending = [];
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
    if (pending.push(buf) === 1) process.nextTick(flush);
    bytes += buf.length;
  };
}
