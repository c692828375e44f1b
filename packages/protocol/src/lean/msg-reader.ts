import { bigBuffer } from "./buffer-pool.js";

/** From this size on, a message is copied into its own buffer as its bytes arrive. */
const FILL_FROM = 64 * 1024;
/** Reads that are not the rest of a large message land here ({@link MsgReader.target}). */
const SCRATCH = 64 * 1024;
/** A large message's length, kind and number: what {@link MsgReader.tagger} is given. */
const HEAD = 11;
/** The bytes at a message's end that its tag's update leaves out (the tag itself). */
const TAG_BYTES = 16;

/** A tag taken in as a message's bytes land (`link-auth.ts`'s `streamTag`). */
export interface StreamTag {
  update(bytes: Uint8Array): void;
  digest(): Buffer;
}

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
  private filling: { buf: Buffer; at: number; tag?: StreamTag | undefined; fed: number } | undefined;
  private scratch: Buffer | undefined;
  private last: Buffer | undefined;
  /** Tags of large messages computed as they arrived, for their owner's check ({@link tagOf}). */
  private readonly tags = new WeakMap<Buffer, Buffer>();
  /**
   * Set by an owner that checks large messages' tags: given the first bytes of one (length, kind,
   * number: untrusted, as the rest), a tag to feed its bytes as they land (undefined: none). So
   * the check of a 50 MiB message overlaps its transfer instead of following it.
   */
  tagger: ((head: Buffer) => StreamTag | undefined) | undefined;
  constructor(private maxBytes: number) {}

  /** The tag computed (by `tagger`'s) of a complete message this reader returned, if there is one. */
  tagOf(m: Buffer): Buffer | undefined {
    return this.tags.get(m);
  }

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
      this.feed(fill);
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
        this.feed(fill);
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
          this.filling = { buf, at: have, fed: 0 };
          this.feed(this.filling);
          break;
        }
        if (this.size < 4 + len) break;
        out.push(this.take(4 + len));
      }
    }
    return out;
  }

  /** Gives the filling message's new bytes to its tag (made once its head is in); at its end, keeps the tag. */
  private feed(fill: NonNullable<MsgReader["filling"]>): void {
    if (!this.tagger) return;
    if (!fill.tag) {
      if (fill.fed < 0 || fill.at < HEAD) return;
      fill.tag = this.tagger(fill.buf.subarray(0, HEAD));
      // No tag for this one: `fed` marks it, so the tagger is asked once.
      if (!fill.tag) return void (fill.fed = -1);
    }
    const end = Math.min(fill.at, fill.buf.length - TAG_BYTES);
    if (end > fill.fed) {
      fill.tag.update(fill.buf.subarray(fill.fed, end));
      fill.fed = end;
    }
    if (fill.at === fill.buf.length) this.tags.set(fill.buf, fill.tag.digest());
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
