import {
  SHARED_KINDS,
  SharedCancelledError,
  SharedKindError,
  SharedValueError,
  type OpenSpec,
  type Part,
  type PtclusterError,
} from "@ptcluster/protocol";
import { refuse, answer, type Call, type Holder, type StoreArgs, type SharedObject } from "./call.js";
import { MemoryBudget } from "./budget.js";
import { SharedDict } from "./dict.js";
import { SharedQueue } from "./queue.js";
import { SharedCounter } from "./counter.js";
import { SharedArray } from "./typed-array.js";
import { SharedPermits } from "./permits.js";
import { SharedEvent } from "./event.js";
import { SharedBarrier } from "./barrier.js";

/** One object in the store, and how it was opened (for `status`). */
export interface SharedObjectInfo {
  name: string;
  kind: string;
  size: number;
  bytes: number;
  waiting: number;
}

const MAX_NAME = 256;

/**
 * The controller's shared state: named objects, created on first use, each operation one atomic
 * step. It knows nothing of sockets: calls come in with a holder and an answer callback, and the
 * controller tells it when a holder (client or engine) is gone.
 */
export class SharedStore {
  private readonly objects = new Map<string, SharedObject>();
  /** Holders that have called each object (its users), to let an idle object go with its last one. */
  private readonly users = new Map<string, Set<Holder>>();
  readonly budget: MemoryBudget;

  constructor(opts: { maxBytes: number }) {
    this.budget = new MemoryBudget(opts.maxBytes);
  }

  /** Runs `op` on the object `name`, opening (and on first use creating) it as `spec` says. */
  call(name: string, spec: OpenSpec, op: string, call: Call, args: StoreArgs): void {
    if (op === "destroy") return answer(call, this.destroy(name));
    const existed = this.objects.has(name);
    // `open` carries what only a new object needs (an array's initial values), once.
    const found = this.open(name, spec, op === "open" ? args.parts?.[0] : undefined);
    if (found instanceof Error) return refuse(call, found);
    let users = this.users.get(name);
    if (!users) this.users.set(name, (users = new Set()));
    users.add(call.holder);
    if (op === "open") return answer(call, !existed);
    found.handle(op, call, args);
  }

  /** Withdraws a waiting call (its `signal` aborted). */
  withdraw(holder: Holder, rid: number): void {
    const why = new SharedCancelledError("The call was cancelled (its signal aborted) while it waited.");
    for (const o of this.objects.values()) if (o.withdraw(holder, rid, why)) return;
  }

  /** A client or engine is gone: its locks and permits are released, its unacknowledged queue items requeued, its waiting calls dropped. */
  holderGone(holder: Holder): void {
    for (const o of this.objects.values()) o.holderGone(holder);
    // An object its last user leaves idle (empty, unheld, unset) goes; one holding data stays until deleted.
    for (const [name, users] of this.users) {
      if (!users.delete(holder) || users.size > 0) continue;
      this.users.delete(name);
      if (this.objects.get(name)?.idle()) this.destroy(name);
    }
  }

  /** Deletes an object: its waiting calls fail, its memory is freed. True if it existed. */
  destroy(name: string): boolean {
    const o = this.objects.get(name);
    this.users.delete(name);
    if (!o) return false;
    this.objects.delete(name);
    o.dispose(new SharedCancelledError(`${o.kind} \`${name}\` was deleted while this call waited.`));
    return true;
  }

  /** Every object with its size, for `ptcluster status` and `rc.status()`. */
  describe(): SharedObjectInfo[] {
    return [...this.objects].map(([name, o]) => ({ name, kind: o.kind, ...o.describe() }));
  }

  get size(): number {
    return this.objects.size;
  }

  private open(name: string, spec: OpenSpec, init: Part | undefined): SharedObject | PtclusterError {
    if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME)
      return new SharedValueError(
        `A shared object's name is a string of 1 to ${MAX_NAME} characters, got ${JSON.stringify(name)?.slice(0, 40)}.`,
      );
    const existing = this.objects.get(name);
    if (existing) return matches(name, existing, spec) ?? existing;
    const created = create(name, spec, init, this.budget);
    if (!(created instanceof Error)) this.objects.set(name, created);
    return created;
  }
}

function create(
  name: string,
  spec: OpenSpec,
  init: Part | undefined,
  budget: MemoryBudget,
): SharedObject | PtclusterError {
  switch (spec.kind) {
    case "dict":
      return new SharedDict(budget);
    case "queue":
      return new SharedQueue(name, wholeOr(spec.maxsize, 0), budget);
    case "counter":
      return new SharedCounter();
    case "array":
      return SharedArray.create(name, init, spec.arrayKind, spec.length, budget);
    case "lock":
      return new SharedPermits("lock", name, 1);
    case "semaphore":
      return (
        positive(spec.permits, `semaphore \`${name}\` needs its number of permits`) ??
        new SharedPermits("semaphore", name, spec.permits as number)
      );
    case "event":
      return new SharedEvent(name);
    case "barrier":
      return (
        positive(spec.parties, `barrier \`${name}\` needs its number of parties`) ??
        new SharedBarrier(name, spec.parties as number)
      );
    default:
      return new SharedValueError(
        `Unknown kind of shared object \`${String((spec as { kind: unknown }).kind)}\`. Known kinds: ${SHARED_KINDS.join(", ")}.`,
      );
  }
}

/** An error if an existing object is not what this use asks for (another kind, other parameters). */
function matches(name: string, o: SharedObject, spec: OpenSpec): PtclusterError | undefined {
  if (o.kind !== spec.kind)
    return new SharedKindError(
      `\`${name}\` is a shared ${o.kind}; it cannot be opened as a ${spec.kind}. Use another name, or delete the ${o.kind} first.`,
    );
  const differs = (what: string, has: unknown, asked: unknown) =>
    new SharedValueError(
      `${o.kind} \`${name}\` exists with ${what} ${String(has)}; it cannot be opened with ${String(asked)}.`,
    );
  if (
    o instanceof SharedPermits &&
    spec.kind === "semaphore" &&
    spec.permits !== undefined &&
    spec.permits !== o.permits
  )
    return differs("permits", o.permits, spec.permits);
  if (o instanceof SharedBarrier && spec.parties !== undefined && spec.parties !== o.parties)
    return differs("parties", o.parties, spec.parties);
  if (o instanceof SharedArray && spec.arrayKind !== undefined && spec.arrayKind !== o.shape.kind)
    return differs("kind", o.shape.kind, spec.arrayKind);
  return undefined;
}

function wholeOr(n: number | undefined, fallback: number): number {
  return n !== undefined && Number.isInteger(n) && n >= 0 ? n : fallback;
}

function positive(n: number | undefined, what: string): PtclusterError | undefined {
  return n !== undefined && Number.isInteger(n) && n >= 1
    ? undefined
    : new SharedValueError(`${what} (a whole number, 1 or more), got ${String(n)}.`);
}
