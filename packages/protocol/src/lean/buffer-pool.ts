/**
 * Large message buffers kept for reuse on this thread. On this VM a fresh multi-MiB buffer costs
 * about 1 ms per MiB in page faults (and its external memory pushes V8 into collections), several
 * times its copy: an 8 MiB allreduce made six such buffers per engine and call. A buffer comes
 * back here only when nothing can read it any more: a sent message once its peer acknowledged it
 * (the kernel has copied it), a received one when a collective says it is done with the value it
 * carried (`release`). Bounded, and emptied when unused for a while.
 */
const MIN_BYTES = 64 * 1024;
const MAX_BYTES = 64 * 1024 * 1024;
const IDLE_MS = 2_000;

const free = new Map<number, ArrayBuffer[]>();
/** Buffers this pool handed out (and may take back). */
const lent = new WeakSet<ArrayBufferLike>();
let held = 0;
let timer: NodeJS.Timeout | undefined;

/** A buffer of exactly `n` bytes at offset 0 of its own ArrayBuffer (8-byte aligned), reused when one is free. */
export function bigBuffer(n: number): Buffer {
  const ab = free.get(n)?.pop();
  if (ab) {
    held -= n;
    lent.add(ab);
    return Buffer.from(ab);
  }
  const buf = Buffer.allocUnsafeSlow(n);
  if (n >= MIN_BYTES) lent.add(buf.buffer);
  return buf;
}

/** Takes back a buffer from `bigBuffer` that nothing reads any more (others are ignored). */
export function recycle(ab: ArrayBufferLike): void {
  if (!lent.has(ab) || !(ab instanceof ArrayBuffer)) return;
  lent.delete(ab);
  if (held + ab.byteLength > MAX_BYTES) return;
  const list = free.get(ab.byteLength);
  if (list) list.push(ab);
  else free.set(ab.byteLength, [ab]);
  held += ab.byteLength;
  if (timer) timer.refresh();
  else
    timer = setTimeout(() => {
      timer = undefined;
      free.clear();
      held = 0;
    }, IDLE_MS).unref();
}
