import { bigBuffer } from "./buffer-pool.js";

/** From this size on, a message is copied into its own buffer as its bytes arrive. */
const FILL_FROM = 64 * 1024;
/** Reads that are not the rest of a large message land here ({@link MsgReader.target}). */
const SCRATCH = 64 * 1024;

/**
 * Cuts a TCP stream into messages (`u32 length of the rest | rest`; the length stays in the
 * message). Nothing here is trusted: the owner checks each message's tag, and a length past
 * `maxBytes` ends the stream.
 */
export class MsgReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /**
   * A large message being received: its buffer (of its own, so its frames stay 8-byte aligned)
   * and the bytes in it so far. Copying each read in at once (rather than keeping the reads until
   * the message is whole) lets the allocator reuse the reads' memory: fresh pages cost more here
   * than the copy.
   */
  private filling: { buf: Buffer; at: number } | undefined;
  private scratch: Buffer | undefined;
  private last: Buffer | undefined;
  constructor(private maxBytes: number) {}

  /** Changes the largest message taken from now on (an endpoint takes only a hello before it trusts the peer). */
  limit(maxBytes: number): void {
    this.maxBytes = maxBytes;
  }

  /**
   * Where a socket's next read should land (`onread`, see link-socket.ts): the rest of the large
   * message being received, so the kernel copies its bytes straight into the message's buffer
   * (no 64 KiB read buffer allocated per read, no copy), else a scratch buffer of this reader's.
   */
  target(): Buffer {
    const fill = this.filling;
    this.last = fill ? fill.buf.subarray(fill.at) : (this.scratch ??= Buffer.allocUnsafeSlow(SCRATCH));
    return this.last;
  }

  /** `n` bytes were read into the last {@link target}; returns the complete messages, as {@link push}. */
  landed(n: number): Buffer[] | undefined {
    const fill = this.filling;
    if (fill && this.last?.buffer === fill.buf.buffer) {
      fill.at += n;
      if (fill.at < fill.buf.length) return [];
      this.filling = undefined;
      return [fill.buf];
    }
    // The scratch buffer takes the next read: what is kept of this one is copied out.
    return this.push(Buffer.from((this.last as Buffer).subarray(0, n)));
  }

  /** Adds bytes; returns the complete messages (undefined: the stream is malformed). */
  push(chunk: Buffer): Buffer[] | undefined {
    const out: Buffer[] = [];
    // The common case: one or more whole messages in one read, nothing pending.
    if (this.size === 0 && !this.filling) {
      let at = 0;
      while (chunk.length - at >= 4) {
        const len = chunk.readUInt32BE(at);
        if (len < 4 || len > this.maxBytes) return undefined;
        if (chunk.length - at < 4 + len) break;
        out.push(chunk.subarray(at, (at += 4 + len)));
      }
      if (at === chunk.length) return out;
      chunk = chunk.subarray(at);
    }
    let rest: Buffer | undefined = chunk;
    while (rest && rest.length > 0) {
      const fill = this.filling;
      if (fill) {
        const k = Math.min(rest.length, fill.buf.length - fill.at);
        rest.copy(fill.buf, fill.at, 0, k);
        fill.at += k;
        rest = rest.subarray(k);
        if (fill.at < fill.buf.length) return out;
        this.filling = undefined;
        out.push(fill.buf);
        continue;
      }
      this.chunks.push(rest);
      this.size += rest.length;
      rest = undefined;
      for (;;) {
        if (this.size < 4) break;
        const len = this.peek(4).readUInt32BE(0);
        if (len < 4 || len > this.maxBytes) return undefined;
        if (this.size < 4 + len && 4 + len >= FILL_FROM) {
          // Start filling the message's own buffer with what is here; later reads go straight in.
          const buf = bigBuffer(4 + len);
          const have = this.size;
          this.take(have).copy(buf, 0);
          this.filling = { buf, at: have };
          break;
        }
        if (this.size < 4 + len) break;
        out.push(this.take(4 + len));
      }
    }
    return out;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  /** The next `n` bytes, as one Buffer (a view when they lie in one chunk). */
  private take(n: number): Buffer {
    this.size -= n;
    const first = this.chunks[0] as Buffer;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafeSlow(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
