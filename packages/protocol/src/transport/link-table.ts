import { Link } from "./link.js";
import type { LinkLimits } from "./send-window.js";

/** Links with nothing in flight, idle this long, are dropped when links pile up (ms). */
const IDLE_LINK_MS = 60_000;

/**
 * A channel's links, one per peer, by routing id (`""` for a DEALER's one peer). Bounded without
 * a timer: when links pile up (clients that came and went), idle ones are swept as a new one is
 * made; a later message from a swept peer simply starts a new stream.
 */
export class LinkTable {
  private readonly links = new Map<string, Link>();
  /** Owners send to the same routing id Buffer over and over: finds its link without turning it into a string each time. */
  private readonly byBuffer = new WeakMap<Buffer, Link>();
  private sweepAt = 64;

  constructor(private readonly limits: LinkLimits) {}

  /** The link to `to`, made if there is none. */
  get(to: Buffer | undefined): Link {
    const cached = to && this.byBuffer.get(to);
    if (cached && !cached.forgotten) return cached;
    const key = to ? to.toString("latin1") : "";
    let link = this.links.get(key);
    if (!link) {
      if (this.links.size >= this.sweepAt) this.sweep();
      link = new Link(to, this.limits);
      this.links.set(key, link);
    }
    if (to) this.byBuffer.set(to, link);
    return link;
  }

  /** The link to the peer whose routing id is `key` (latin1; `""`: a DEALER's peer), if any. */
  find(key: string): Link | undefined {
    return this.links.get(key);
  }

  /** Removes the link to `peer` and returns it (the caller abandons what it holds). */
  remove(peer: Buffer | undefined): Link | undefined {
    const key = peer ? peer.toString("latin1") : "";
    const link = this.links.get(key);
    if (link) this.links.delete(key);
    return link;
  }

  get size(): number {
    return this.links.size;
  }

  values(): IterableIterator<Link> {
    return this.links.values();
  }

  /** Messages sent and not yet acknowledged, over all peers. */
  get inFlight(): number {
    let n = 0;
    for (const link of this.links.values()) n += link.unacked.length;
    return n;
  }

  /** Drops links idle for a while with nothing in flight, held, kept after a gap or owed. */
  private sweep(): void {
    const before = Date.now() - IDLE_LINK_MS;
    for (const [key, link] of this.links) {
      if (
        link.lastActive < before &&
        link.unacked.length === 0 &&
        link.held.length === 0 &&
        link.earlyCount === 0 &&
        !link.ackOwed
      ) {
        this.links.delete(key);
        link.forgotten = true;
      }
    }
    this.sweepAt = Math.max(64, this.links.size * 2);
  }
}
