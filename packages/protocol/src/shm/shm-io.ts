import { closeSync, constants, fstatSync, linkSync, openSync, readSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Part } from "../part.js";
import { ShmTamperedError, ShmUnavailableError } from "../errors.js";
import { ShmTagger, TAG_BYTES, encodeRef, fileOf, isRef, parseRef, PARTY } from "./shm-ref.js";

/** What a client or an engine on the controller's host needs to pass values through shared memory. */
export interface ShmConfig {
  /** The cluster's private folder (0700, on /dev/shm where it exists). */
  dir: string;
  /** The tag key, derived from the cluster key ({@link deriveShmKey}). */
  key: Buffer;
  /** Frames of this many bytes or more go through a file. */
  threshold: number;
  /** How long a reader waits for a writer that stopped writing (ms, default 10 s). */
  waitMs?: number;
}

// Chunks small enough to stay in cache between the copy and the tag (L2 here is 1-2 MiB).
const CHUNK = 1 << 20;
const MAX_PENDING = 64;
const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW } = constants;

/**
 * One process's side of the shared-memory path: it writes large frames to files and returns their
 * references ({@link ShmEndpoint.externalize}), and turns references back into frames
 * ({@link ShmEndpoint.materialize}), reading each file straight into the memory that then holds
 * the value and checking its tag before anything uses it.
 */
export class ShmEndpoint {
  #pending: Array<() => void> = [];

  /** `self` is this process's party tag (`c<id>`, `e<id>`): it names the files it writes and the links it reads. */
  constructor(
    readonly config: ShmConfig,
    public self: string,
  ) {}

  /**
   * A copy of `part` whose frames of `threshold` bytes or more went to files: `receivers` are the
   * party tags of the processes that will read it (one hard link each), or `any` for the one that
   * will (a load-balanced task). With `defer`, see {@link write}.
   */
  externalize(part: Part, receivers: readonly string[] | "any", defer = false): Part {
    let frames: Buffer[] | undefined;
    for (let i = 0; i < part.frames.length; i++) {
      const f = part.frames[i] as Buffer;
      if (f.byteLength < this.config.threshold) continue;
      frames ??= part.frames.slice();
      frames[i] = this.write(f, receivers, defer);
    }
    return frames ? { body: part.body, frames } : part;
  }

  /**
   * Writes one frame to a file (and a link per further receiver); returns its reference frame.
   * With `defer`, the file is made (empty) now and filled by {@link flushWrites}: the reference can
   * go out first, and its reader reads while this process writes.
   */
  write(bytes: Uint8Array, receivers: readonly string[] | "any", defer = false): Buffer {
    const perReceiver = receivers !== "any";
    const names = perReceiver ? receivers : ["any"];
    for (const r of names) if (!PARTY.test(r)) throw new TypeError(`not a shared-memory party: ${r}`);
    // Each deferred file holds a descriptor open: many in one turn (a map of large items) are filled now.
    if (this.#pending.length >= MAX_PENDING) this.flushWrites();
    const name = `${this.self}_${randomBytes(16).toString("hex")}`;
    const nonce = randomBytes(12);
    const files = names.map((r) => join(this.config.dir, `${name}_${r}`));
    const first = files[0] as string;
    const fd = openSync(first, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600);
    const fail = (err: unknown) => {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
      for (const f of files) rmSync(f, { force: true });
      throw err;
    };
    try {
      // Links first: they share the file, so every reader sees the bytes as they are written.
      for (let i = 1; i < files.length; i++) linkSync(first, files[i] as string);
    } catch (err) {
      fail(err);
    }
    const fill = () => {
      try {
        const tagger = new ShmTagger(this.config.key, nonce, name, bytes.byteLength);
        for (let at = 0; at < bytes.byteLength; at += CHUNK) {
          const chunk = bytes.subarray(at, Math.min(at + CHUNK, bytes.byteLength));
          tagger.update(chunk);
          writeAll(fd, chunk);
        }
        writeAll(fd, tagger.digest());
        closeSync(fd);
      } catch (err) {
        fail(err);
      }
    };
    if (defer) this.#pending.push(fill);
    else fill();
    return encodeRef({ name, length: bytes.byteLength, perReceiver, nonce });
  }

  /** Whether deferred writes wait for {@link flushWrites}. */
  get pending(): boolean {
    return this.#pending.length > 0;
  }

  /** Fills the files of deferred writes (all of them, then throws the first failure). Never waits on another process. */
  flushWrites(): void {
    let failure: unknown;
    while (this.#pending.length > 0) {
      const jobs = this.#pending;
      this.#pending = [];
      for (const fill of jobs) {
        try {
          fill();
        } catch (err) {
          failure ??= err;
        }
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * A copy of `part` whose reference frames are replaced by the files' bytes, checked. A file (or
   * link) for this reader alone is removed once read; a `…_any` file (a load-balanced task's) is
   * left for its writer to remove when the task is over, so that a re-run elsewhere (a retry, or
   * after its engine died) still finds it.
   */
  materialize(part: Part): Part {
    let frames: Buffer[] | undefined;
    for (let i = 0; i < part.frames.length; i++) {
      const f = part.frames[i] as Buffer;
      if (!isRef(f)) continue;
      frames ??= part.frames.slice();
      frames[i] = this.read(f);
    }
    return frames ? { body: part.body, frames } : part;
  }

  /**
   * Reads one reference's file into fresh memory and checks its tag. A file still being written
   * (its writer sent the reference first) is read as its bytes arrive; a writer that stops for
   * `waitMs` makes it fail with {@link ShmUnavailableError}.
   */
  read(refFrame: Buffer): Buffer {
    // This process's own deferred writes first: a peer may be waiting on them (no deadlock).
    this.flushWrites();
    const ref = parseRef(refFrame);
    if (!ref) throw new ShmTamperedError("(unparsable reference)", "its reference frame is malformed");
    const file = join(this.config.dir, fileOf(ref, this.self));
    let fd: number;
    try {
      fd = openSync(file, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      throw new ShmUnavailableError(
        `The shared-memory file ${file} of a value sent to this process is gone (${(err as NodeJS.ErrnoException).code}): ` +
          "it was read already, or swept after its sender or receiver was declared gone. Send the value again.",
        { cause: err },
      );
    }
    try {
      const total = ref.length + TAG_BYTES;
      const tooLong = () => {
        const size = fstatSync(fd).size;
        if (size > total) throw new ShmTamperedError(file, `it holds ${size} bytes, its reference says ${total}`);
      };
      tooLong();
      // Not zero-filled: every byte is read into it. Not pooled: offset 0, so typed arrays view it aligned.
      const out = Buffer.allocUnsafeSlow(ref.length);
      const tag = Buffer.alloc(TAG_BYTES);
      const tagger = new ShmTagger(this.config.key, ref.nonce, ref.name, ref.length);
      const waiter = new Waiter(this.config.waitMs ?? 10_000);
      for (let at = 0; at < total;) {
        const n =
          at < ref.length
            ? readSync(fd, out, at, Math.min(CHUNK, ref.length - at), at)
            : readSync(fd, tag, at - ref.length, total - at, at);
        if (n === 0) {
          if (!waiter.wait())
            throw new ShmUnavailableError(
              `The shared-memory file ${file} stopped growing at ${at} of ${total} bytes: its writer stopped (it was killed?). Send the value again.`,
            );
          continue;
        }
        if (at < ref.length) tagger.update(out.subarray(at, at + n));
        at += n;
        waiter.progress();
      }
      tooLong();
      if (!tagger.matches(tag)) throw new ShmTamperedError(file, "its content does not match its tag");
      return out;
    } finally {
      closeSync(fd);
      if (ref.perReceiver) unlinkQuietly(file);
    }
  }

  /** The `…_any` files behind the references of `part` (their writer removes them with {@link remove}). */
  sharedFiles(part: Part): string[] {
    const out: string[] = [];
    for (const f of part.frames) {
      const ref = isRef(f) ? parseRef(f) : undefined;
      if (ref && !ref.perReceiver) out.push(join(this.config.dir, fileOf(ref, this.self)));
    }
    return out;
  }

  static remove(files: readonly string[]): void {
    for (const f of files) unlinkQuietly(f);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done);
}

/** Waits for a writer's next bytes: short sleeps (the thread blocks, by design), given up after `limitMs` without progress. */
class Waiter {
  static readonly #cell = new Int32Array(new SharedArrayBuffer(4));
  #since = performance.now();
  #sleep = 0.02;
  constructor(private readonly limitMs: number) {}
  progress(): void {
    this.#since = performance.now();
    this.#sleep = 0.02;
  }
  wait(): boolean {
    if (performance.now() - this.#since > this.limitMs) return false;
    Atomics.wait(Waiter.#cell, 0, 0, this.#sleep);
    this.#sleep = Math.min(this.#sleep * 2, 1);
    return true;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // swept already
  }
}

/** Whether a part holds shared-memory references. */
export function hasRefs(part: Part): boolean {
  return part.frames.some(isRef);
}

/**
 * For a process that has no shared-memory path (another host, or turned off): a part with
 * references cannot be used here. Throws {@link ShmUnavailableError}.
 */
export function refuseRefs(part: Part, where: string): void {
  if (hasRefs(part))
    throw new ShmUnavailableError(
      `A value reached ${where} as a shared-memory reference, but ${where} is not on its sender's host (or has shared memory off). ` +
        "Start every engine on one host, or start the cluster with --shm-threshold-kb 0.",
    );
}
