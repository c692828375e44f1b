import { closeSync, constants, fstatSync, linkSync, openSync, readSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Part } from "../part.js";
import { ShmTamperedError, ShmUnavailableError } from "../errors.js";
import { ShmTagger, encodeRef, fileOf, isRef, parseRef, PARTY } from "./shm-ref.js";

/** What a client or an engine on the controller's host needs to pass values through shared memory. */
export interface ShmConfig {
  /** The cluster's private folder (0700, on /dev/shm where it exists). */
  dir: string;
  /** The tag key, derived from the cluster key ({@link deriveShmKey}). */
  key: Buffer;
  /** Frames of this many bytes or more go through a file. */
  threshold: number;
}

// Chunks small enough to stay in cache between the copy and the tag (L2 here is 1-2 MiB).
const CHUNK = 1 << 20;
const { O_CREAT, O_EXCL, O_WRONLY, O_RDONLY, O_NOFOLLOW } = constants;

/**
 * One process's side of the shared-memory path: it writes large frames to files and returns their
 * references ({@link ShmEndpoint.externalize}), and turns references back into frames
 * ({@link ShmEndpoint.materialize}), reading each file straight into the memory that then holds
 * the value and checking its tag before anything uses it.
 */
export class ShmEndpoint {
  /** `self` is this process's party tag (`c<id>`, `e<id>`): it names the files it writes and the links it reads. */
  constructor(
    readonly config: ShmConfig,
    public self: string,
  ) {}

  /**
   * A copy of `part` whose frames of `threshold` bytes or more went to files: `receivers` are the
   * party tags of the processes that will read it (one hard link each), or `any` for the one that
   * will (a load-balanced task).
   */
  externalize(part: Part, receivers: readonly string[] | "any"): Part {
    let frames: Buffer[] | undefined;
    for (let i = 0; i < part.frames.length; i++) {
      const f = part.frames[i] as Buffer;
      if (f.byteLength < this.config.threshold) continue;
      frames ??= part.frames.slice();
      frames[i] = this.write(f, receivers);
    }
    return frames ? { body: part.body, frames } : part;
  }

  /** Writes one frame to a file (and a link per further receiver); returns its reference frame. */
  write(bytes: Uint8Array, receivers: readonly string[] | "any"): Buffer {
    const perReceiver = receivers !== "any";
    const names = perReceiver ? receivers : ["any"];
    for (const r of names) if (!PARTY.test(r)) throw new TypeError(`not a shared-memory party: ${r}`);
    const name = `${this.self}_${randomBytes(16).toString("hex")}`;
    const nonce = randomBytes(12);
    const tagger = new ShmTagger(this.config.key, nonce, name, bytes.byteLength);
    const files = names.map((r) => join(this.config.dir, `${name}_${r}`));
    const first = files[0] as string;
    const fd = openSync(first, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600);
    try {
      for (let at = 0; at < bytes.byteLength; at += CHUNK) {
        const chunk = bytes.subarray(at, Math.min(at + CHUNK, bytes.byteLength));
        tagger.update(chunk);
        for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done);
      }
      closeSync(fd);
      for (let i = 1; i < files.length; i++) linkSync(first, files[i] as string);
    } catch (err) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
      for (const f of files) rmSync(f, { force: true });
      throw err;
    }
    return encodeRef({ name, length: bytes.byteLength, perReceiver, nonce, tag: tagger.digest() });
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

  read(refFrame: Buffer): Buffer {
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
      const size = fstatSync(fd).size;
      if (size !== ref.length)
        throw new ShmTamperedError(file, `it holds ${size} bytes, its reference says ${ref.length}`);
      // Not zero-filled: every byte is read into it. Not pooled: offset 0, so typed arrays view it aligned.
      const out = Buffer.allocUnsafeSlow(ref.length);
      const tagger = new ShmTagger(this.config.key, ref.nonce, ref.name, ref.length);
      for (let at = 0; at < ref.length;) {
        const n = readSync(fd, out, at, Math.min(CHUNK, ref.length - at), at);
        if (n === 0) throw new ShmTamperedError(file, "it ended early");
        tagger.update(out.subarray(at, at + n));
        at += n;
      }
      if (!tagger.matches(ref.tag)) throw new ShmTamperedError(file, "its content does not match its tag");
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
