import { randomUUID } from "node:crypto";
import { CompositeError, decodeValue, type Part, type TaskOp, type TaskResult } from "@ptcluster/protocol";
import type { NewTask, TaskSink, ViewPort } from "../session/view-port.js";
import { recordResult, type TaskMetadata } from "./async-result.js";
import { failureToError } from "./remote-errors.js";
import type { ShippedFunction } from "../functions/ship.js";

/** A call addressed to explicit engines. */
export interface Submission {
  op: TaskOp;
  targets: number[];
  /** Payload per target, or one for all. */
  parts: Part[] | Part;
  fn?: ShippedFunction;
  scope?: string[];
  /** Run-time limit (ms) of each task, or one per target (a map's blocks differ in length). */
  timeout?: number | number[] | undefined;
}

/** What becomes of the gathered results. */
export interface Gathered {
  /** A target's value arrived and decoded (before the others, perhaps). */
  value?(index: number, value: unknown): void;
  /** One more target finished, with a value or an error. */
  step(): void;
  /** Every target succeeded: the values in target order. */
  resolve(values: unknown[]): void;
  /** Every target finished and some failed: a single target's error, or a `CompositeError`. */
  reject(err: Error): void;
}

/** Refuses, synchronously and before anything is sent, payloads that could never be sent. */
export function checkSizes(port: Pick<ViewPort, "checkSize">, s: Submission): void {
  for (const p of Array.isArray(s.parts) ? s.parts : [s.parts]) port.checkSize(p, `This ${s.op}'s data`);
}

/**
 * Gathers the results of one call's tasks into slots (one per target, or the one slot of a
 * load-balanced task): records each slot's metadata, decodes values, and once every slot has
 * finished releases the tasks and resolves with the values in slot order, or rejects with a
 * single slot's error (`single`) or a `CompositeError` of the failures in slot order. The tasks'
 * ids go into `ids` as the caller submits them (they are what `abort()` cancels).
 */
export class Gatherer {
  readonly #values: unknown[];
  readonly #errors: Error[] = [];
  #remaining: number;

  /** `timeout`: the tasks' per-task timeout (ms), or one per slot, named in a timeout's error. */
  constructor(
    private readonly port: Pick<ViewPort, "release">,
    private readonly metadata: TaskMetadata[],
    readonly ids: number[],
    private readonly single: boolean,
    private readonly out: Gathered,
    private readonly timeout?: number | readonly number[],
  ) {
    this.#values = new Array<unknown>(metadata.length);
    this.#remaining = metadata.length;
  }

  /** A sink for one task; `slotFor` says which slot a result of it fills (undefined: none). */
  sink(slotFor: (r: TaskResult) => number | undefined): TaskSink {
    return {
      onResult: (r, part) => this.#onResult(slotFor(r), r, part),
      onFailure: (err) => this.#onFailure(err),
    };
  }

  #onResult(i: number | undefined, r: TaskResult, part: Part): void {
    if (i === undefined || this.metadata[i]?.status !== "pending") return;
    const m = this.metadata[i] as TaskMetadata;
    recordResult(m, r);
    if (r.ok) {
      try {
        this.#values[i] = decodeValue(part.body, part.frames);
        this.out.value?.(i, this.#values[i]);
      } catch (err) {
        m.status = "error";
        this.#errors.push(err as Error);
      }
    } else {
      const t = this.timeout;
      const err = failureToError(r, part, { timeout: typeof t === "number" ? t : t?.[i] });
      this.#values[i] = err;
      this.#errors.push(err);
    }
    this.out.step();
    if (--this.#remaining === 0) this.#finish();
  }

  /** The connection failed: every slot still pending fails with `err`. */
  #onFailure(err: Error): void {
    for (let i = 0; i < this.metadata.length; i++) {
      const m = this.metadata[i] as TaskMetadata;
      if (m.status !== "pending") continue;
      m.status = "error";
      this.#values[i] = err;
      this.#errors.push(err);
      this.out.step();
      this.#remaining--;
    }
    // Every sink of the call hears of the failure: finish at the first only.
    if (this.#remaining === 0) this.#finish();
  }

  #finish(): void {
    this.#remaining = -1;
    for (const id of this.ids) this.port.release(id);
    const errors = this.#errors;
    if (errors.length === 0) this.out.resolve(this.#values);
    else if (this.single) this.out.reject(errors[0] as Error);
    else {
      // Report failures in target order, not arrival order.
      const ordered = this.#values.filter((v): v is Error => v instanceof Error && errors.includes(v));
      this.out.reject(new CompositeError(ordered.length === errors.length ? ordered : errors, this.#values));
    }
  }
}

/**
 * Submits one task per target (or one to all), gathers the results in target order into
 * `metadata` (one per target), and records the task ids in `ids` (for cancelling).
 */
export function gatherTargets(
  port: Pick<ViewPort, "submit" | "release">,
  s: Submission,
  single: boolean,
  metadata: TaskMetadata[],
  ids: number[],
  out: Gathered,
): void {
  const g = new Gatherer(port, metadata, ids, single, out, s.timeout);
  const base: Omit<NewTask, "to"> = { op: s.op };
  const timeoutOf = (i: number) => (typeof s.timeout === "number" ? s.timeout : s.timeout?.[i]);
  if (s.fn) {
    base.fn = s.fn.hash;
    base.name = s.fn.name;
  }
  if (s.scope?.length) base.scope = s.scope;
  // One group per call (`engine.comm`): a fresh id, and the targets in the order given (their ranks).
  if (s.op !== "push" && s.op !== "pull") base.comm = { g: randomUUID(), ranks: [...s.targets] };
  if (Array.isArray(s.parts)) {
    // A different payload per engine: one task each.
    s.targets.forEach((t, i) => {
      const timeout = timeoutOf(i);
      ids.push(
        port.submit(
          { ...base, to: [t], ...(timeout === undefined ? {} : { timeout }) },
          (s.parts as Part[])[i] as Part,
          g.sink(() => i),
          s.fn?.src,
        ),
      );
    });
  } else {
    const indexOf = new Map<number, number>();
    s.targets.forEach((t, i) => indexOf.set(t, i));
    // One payload for all: one task, so one limit (an array of limits is for per-target payloads).
    const timeout = timeoutOf(0);
    ids.push(
      port.submit(
        { ...base, to: s.targets, ...(timeout === undefined ? {} : { timeout }) },
        s.parts,
        g.sink((r) => indexOf.get(r.engine)),
        s.fn?.src,
      ),
    );
  }
}
