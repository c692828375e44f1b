import { SharedHandle } from "./handle.js";
import { waitArgs } from "./values.js";
import type { SharedTransport, WaitOptions } from "./wire.js";

/** A held lock or semaphore permit: release it once, or dispose of it (`await using`). */
export class Hold {
  private released = false;

  constructor(
    private readonly owner: SharedPermitsHandle,
    /** The controller's id of this hold. */
    readonly token: number,
  ) {}

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.owner.releaseToken(this.token);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

abstract class SharedPermitsHandle extends SharedHandle {
  /** Waits until it is free (first come, first served); the hold is released on dispose, or when its holder dies. */
  async acquire(options?: WaitOptions): Promise<Hold> {
    const a = await this.call("acquire", waitArgs(options), [], options?.signal);
    return new Hold(this, a.value as number);
  }

  /** @internal Releases a hold by its token (`Hold.release`). */
  async releaseToken(token: number): Promise<void> {
    await this.call("release", { token });
  }

  /** Runs `fn` holding it, and releases it however `fn` ends. */
  async withHold<R>(fn: () => R | Promise<R>, options?: WaitOptions): Promise<R> {
    const hold = await this.acquire(options);
    try {
      return await fn();
    } finally {
      await hold.release();
    }
  }
}

/** A lock held by the controller: one holder at a time, freed if its holder dies. */
export class SharedLock extends SharedPermitsHandle {
  constructor(transport: SharedTransport, name: string) {
    super(transport, name, { kind: "lock" });
  }

  async locked(): Promise<boolean> {
    return (await this.call("locked")).value === true;
  }
}

/** A semaphore held by the controller: up to `permits` holders at once. */
export class SharedSemaphore extends SharedPermitsHandle {
  constructor(transport: SharedTransport, name: string, permits?: number) {
    super(transport, name, permits === undefined ? { kind: "semaphore" } : { kind: "semaphore", permits });
  }

  async available(): Promise<number> {
    return (await this.call("available")).value as number;
  }
}

/** An event held by the controller (Python's `Event`). */
export class SharedEvent extends SharedHandle {
  constructor(transport: SharedTransport, name: string) {
    super(transport, name, { kind: "event" });
  }

  async set(): Promise<void> {
    await this.call("set");
  }

  async clear(): Promise<void> {
    await this.call("clear");
  }

  async isSet(): Promise<boolean> {
    return (await this.call("isSet")).value === true;
  }

  /** Resolves once it is set (at once if it is). */
  async wait(options?: WaitOptions): Promise<void> {
    await this.call("wait", waitArgs(options), [], options?.signal);
  }
}

/** A barrier held by the controller (Python's `Barrier`). */
export class SharedBarrier extends SharedHandle {
  constructor(transport: SharedTransport, name: string, parties?: number) {
    super(transport, name, parties === undefined ? { kind: "barrier" } : { kind: "barrier", parties });
  }

  /**
   * Waits until all parties have arrived; resolves to this caller's arrival index (0 … parties-1).
   * If a party times out, is cancelled or dies first, every waiting party fails with `BarrierBrokenError`.
   */
  async wait(options?: WaitOptions): Promise<number> {
    const a = await this.call("wait", waitArgs(options), [], options?.signal);
    return (a.value as { index: number }).index;
  }
}
