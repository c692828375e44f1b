import { SharedArray, type NumericArray, type NumericArrayCtor } from "./array.js";
import { SharedCounter } from "./counter.js";
import { SharedDict } from "./dict.js";
import { SharedQueue } from "./queue.js";
import { SharedBarrier, SharedEvent, SharedLock, SharedSemaphore } from "./sync.js";
import type { SharedTransport } from "./wire.js";

/**
 * Named objects held by the controller: `rc.shared` in a client, `engine.shared` in shipped code,
 * the same from every host. An object is created on first use of its name; opening a name as
 * another kind is an error naming both kinds.
 */
export class SharedNamespace {
  constructor(private readonly transport: SharedTransport) {}

  dict<T = unknown>(name: string): SharedDict<T> {
    return new SharedDict<T>(this.transport, name);
  }

  queue<T = unknown>(name: string, options?: { maxsize?: number }): SharedQueue<T> {
    return new SharedQueue<T>(this.transport, name, options);
  }

  counter(name: string): SharedCounter {
    return new SharedCounter(this.transport, name);
  }

  /** An array made of `init` (if the name is new), or of `length` zeros of a kind, or the existing one. */
  array<A extends NumericArray = Float64Array>(name: string, init?: A): SharedArray<A>;
  array<A extends NumericArray>(
    name: string,
    kind: NumericArrayCtor & { prototype: A },
    length: number,
  ): SharedArray<A>;
  array<A extends NumericArray>(name: string, init?: A | NumericArrayCtor, length?: number): SharedArray<A> {
    if (typeof init === "function")
      return new SharedArray<A>(this.transport, name, { kind: init.name, length: length ?? 0 });
    return new SharedArray<A>(this.transport, name, init);
  }

  lock(name: string): SharedLock {
    return new SharedLock(this.transport, name);
  }

  semaphore(name: string, permits?: number): SharedSemaphore {
    return new SharedSemaphore(this.transport, name, permits);
  }

  event(name: string): SharedEvent {
    return new SharedEvent(this.transport, name);
  }

  barrier(name: string, parties?: number): SharedBarrier {
    return new SharedBarrier(this.transport, name, parties);
  }

  /** Deletes the object of this name, whatever its kind (its waiting calls fail, its memory is freed); true if it existed. */
  async delete(name: string): Promise<boolean> {
    // The kind is not checked for a deletion: any will do.
    return (await this.transport.call(name, { kind: "dict" }, "destroy", {}, [])).value === true;
  }
}
