import { CompositeError, decodeValue, type ClientTask, type Part, type TaskOp, type TaskResult } from "@ptcluster/protocol";
import type { Client } from "../client.js";
import { recordResult, type TaskMetadata } from "./async-result.js";
import { failureToError } from "./remote-errors.js";
import type { ShippedFunction } from "../functions/ship.js";

/** @internal A call addressed to explicit engines. */
export interface Submission {
  op: TaskOp;
  targets: number[];
  /** Payload per target, or one for all. */
  parts: Part[] | Part;
  fn?: ShippedFunction;
  scope?: string[];
}

/** @internal What becomes of the gathered results. */
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

/** @internal Refuses, synchronously and before anything is sent, payloads that could never be sent. */
export function checkSizes(client: Client, s: Submission): void {
  for (const p of Array.isArray(s.parts) ? s.parts : [s.parts]) client.checkSize(p, `This ${s.op}'s data`);
}

/**
 * @internal Submits one task per target (or one to all), gathers the results in target order
 * into `metadata` (one per target), and records the task ids in `ids` (for cancelling).
 */
export function gatherTargets(client: Client, s: Submission, single: boolean, metadata: TaskMetadata[], ids: number[], out: Gathered): void {
  const values = new Array<unknown>(s.targets.length);
  const errors: Error[] = [];
  const indexOf = new Map<number, number>();
  s.targets.forEach((t, i) => indexOf.set(t, i));
  let remaining = s.targets.length;
  const finish = () => {
    for (const id of ids) client.release(id);
    if (errors.length === 0) out.resolve(values);
    else if (single) out.reject(errors[0] as Error);
    else {
      // Report failures in target order, not arrival order.
      const ordered = values.filter((v): v is Error => v instanceof Error && errors.includes(v));
      out.reject(new CompositeError(ordered.length === errors.length ? ordered : errors, values));
    }
  };
  const sink = (slotFor: (r: TaskResult) => number | undefined) => ({
    onResult(r: TaskResult, part: Part) {
      const i = slotFor(r);
      if (i === undefined || metadata[i]?.status !== "pending") return;
      const m = metadata[i] as TaskMetadata;
      recordResult(m, r);
      if (r.ok) {
        try {
          values[i] = decodeValue(part.body, part.frames);
          out.value?.(i, values[i]);
        } catch (err) {
          m.status = "error";
          errors.push(err as Error);
        }
      } else {
        const err = failureToError(r, part);
        values[i] = err;
        errors.push(err);
      }
      out.step();
      if (--remaining === 0) finish();
    },
    onFailure(err: Error) {
      for (let i = 0; i < metadata.length; i++) {
        const m = metadata[i] as TaskMetadata;
        if (m.status !== "pending") continue;
        m.status = "error";
        values[i] = err;
        errors.push(err);
        out.step();
        remaining--;
      }
      if (remaining <= 0) {
        remaining = -1;
        finish();
      }
    },
  });
  const base: Omit<ClientTask, "id" | "src" | "to"> = { op: s.op };
  if (s.fn) {
    base.fn = s.fn.hash;
    base.name = s.fn.name;
  }
  if (s.scope?.length) base.scope = s.scope;
  if (Array.isArray(s.parts)) {
    // A different payload per engine: one task each.
    s.targets.forEach((t, i) => {
      ids.push(client.submit({ ...base, to: [t] }, (s.parts as Part[])[i] as Part, sink(() => i), s.fn?.src));
    });
  } else {
    ids.push(client.submit({ ...base, to: s.targets }, s.parts, sink((r) => indexOf.get(r.engine)), s.fn?.src));
  }
}
