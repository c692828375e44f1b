import { InvalidOptionError } from "../errors.js";
import type { FaultCounts } from "../messages.js";
import { outgoing, type Outgoing } from "./send-window.js";

/**
 * Fault injection, for tests only: a shim between a channel and its socket that drops,
 * duplicates, delays (and so reorders) and corrupts outgoing messages. It is on only when the
 * environment variable below is set (or a test passes a spec to a channel directly), says so
 * loudly, and costs one `undefined` check per message when off.
 *
 *   PTCLUSTER_TEST_FAULTS="drop=0.05,dup=0.05,corrupt=0.02,delay=0-20,seed=42"
 *
 * Per message: dropped with probability `drop` (never sent: reliable delivery sends it again);
 * otherwise one copy has a bit flipped in a random frame (binary frames included; never the
 * routing id or the ptcluster marker) with probability `corrupt`, a second, intact copy follows
 * with probability `dup`, and each copy waits `delay` ms (uniform in the range) before going out.
 * Processes started by `ptcluster start` inherit the variable. One-way channels (notifications)
 * are left alone.
 */
export const FAULTS_ENV = "PTCLUSTER_TEST_FAULTS";

export interface FaultSpec {
  drop: number;
  dup: number;
  corrupt: number;
  /** Delay range (ms), inclusive. */
  delay: [number, number];
  seed: number;
}

/** The fault spec in the environment; undefined when the variable is unset or empty. */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): FaultSpec | undefined {
  const raw = env[FAULTS_ENV];
  return raw ? parseFaults(raw) : undefined;
}

/** Parses `drop=P,dup=P,corrupt=P,delay=LO-HI,seed=N` (every key optional); throws on anything else. */
export function parseFaults(raw: string): FaultSpec {
  const spec: FaultSpec = { drop: 0, dup: 0, corrupt: 0, delay: [0, 0], seed: 1 };
  const bad = (what: string) =>
    new InvalidOptionError(
      `Expected ${FAULTS_ENV} like "drop=0.05,dup=0.05,corrupt=0.02,delay=0-20,seed=42"; ${what} in \`${raw}\``,
    );
  for (const item of raw.split(",")) {
    const [k, v, extra] = item.trim().split("=");
    if (!k || v === undefined || extra !== undefined) throw bad(`\`${item}\` is not key=value`);
    if (k === "drop" || k === "dup" || k === "corrupt") {
      const p = Number(v);
      if (v.trim() === "" || !(p >= 0 && p <= 1)) throw bad(`${k} must be a probability between 0 and 1, got \`${v}\``);
      spec[k] = p;
    } else if (k === "delay") {
      const m = /^(\d+)(?:-(\d+))?$/.exec(v);
      const lo = Number(m?.[1]);
      const hi = Number(m?.[2] ?? m?.[1]);
      if (!m || hi < lo) throw bad(`delay must be milliseconds or a range like 0-20, got \`${v}\``);
      spec.delay = [lo, hi];
    } else if (k === "seed") {
      if (!/^\d+$/.test(v)) throw bad(`seed must be a non-negative integer, got \`${v}\``);
      spec.seed = Number(v);
    } else {
      throw bad(`unknown key \`${k}\``);
    }
  }
  return spec;
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

let announced = false;

export class FaultShim {
  readonly counts: FaultCounts = { dropped: 0, duplicated: 0, corrupted: 0, delayed: 0 };
  private readonly random: () => number;
  /** Copies this shim made: they go out as they are. */
  private readonly own = new WeakSet<Outgoing>();
  private readonly timers = new Set<NodeJS.Timeout>();

  /**
   * @param firstFrame index of the first frame that may be corrupted (after the routing id and the marker)
   * @param resend puts a copy back in the channel's write queue
   */
  constructor(
    readonly spec: FaultSpec,
    label: string,
    private readonly firstFrame: number,
    private readonly resend: (out: Outgoing) => void,
  ) {
    this.random = seededRandom(spec.seed ^ hashLabel(label));
    if (!announced) {
      announced = true;
      process.stderr.write(
        `ptcluster: WARNING: ${FAULTS_ENV} is set: this process drops, duplicates, delays and corrupts its own messages on purpose. For tests only.\n`,
      );
    }
  }

  /** Decides what happens to one outgoing message; true if the shim took it (the writer must not send it). */
  intercept(out: Outgoing): boolean {
    if (this.own.delete(out)) return false;
    const { spec, counts } = this;
    if (this.random() < spec.drop) {
      counts.dropped++;
      return true;
    }
    const copies = [this.random() < spec.corrupt ? this.corrupt(out.frames) : out.frames];
    if (copies[0] !== out.frames) counts.corrupted++;
    if (this.random() < spec.dup) {
      copies.push(out.frames);
      counts.duplicated++;
    }
    const [lo, hi] = spec.delay;
    if (copies.length === 1 && copies[0] === out.frames && hi === 0) return false;
    for (const frames of copies) {
      const copy = outgoing(frames, 0, out.bytes);
      this.own.add(copy);
      const ms = lo + Math.floor(this.random() * (hi - lo + 1));
      if (ms === 0) {
        this.resend(copy);
        continue;
      }
      counts.delayed++;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.resend(copy);
      }, ms);
      t.unref();
      this.timers.add(t);
    }
    return true;
  }

  /** A copy of `frames` with one bit flipped in one non-empty frame after the marker. */
  private corrupt(frames: Buffer[]): Buffer[] {
    const candidates: number[] = [];
    for (let i = this.firstFrame; i < frames.length; i++) if ((frames[i] as Buffer).length > 0) candidates.push(i);
    if (candidates.length === 0) return frames;
    const i = candidates[Math.floor(this.random() * candidates.length)] as number;
    const frame = Buffer.from(frames[i] as Buffer);
    const byte = Math.floor(this.random() * frame.length);
    frame[byte] = (frame[byte] as number) ^ (1 << Math.floor(this.random() * 8));
    const copy = frames.slice();
    copy[i] = frame;
    return copy;
  }

  /** Cancels delayed copies. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
