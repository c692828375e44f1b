import type { Part } from "@ptcluster/protocol";

/** Where an output of a `flatMap` sits among its item's outputs: one index per `flatMap` it went through. */
export type OutputPath = readonly number[];

interface Live {
  /** Pieces of this item still in some stage. */
  pieces: number;
  outputs: Array<{ path: OutputPath; part: Part }>;
}

/**
 * The input items still in the pipeline, each with the pieces of it still in flight (more than one
 * after a `flatMap`) and the outputs it has produced. An item is finished when its last piece has
 * left the last stage or been dropped; its outputs then go out in order (by their `flatMap` paths).
 */
export class ItemOutputs {
  private readonly live = new Map<number, Live>();

  get size(): number {
    return this.live.size;
  }

  add(item: number): void {
    this.live.set(item, { pieces: 1, outputs: [] });
  }

  /** A piece of `item` became `n` pieces (a `flatMap`; n ≥ 1). */
  split(item: number, n: number): void {
    const e = this.live.get(item);
    if (e) e.pieces += n - 1;
  }

  /** A piece of `item` left the last stage: the item's outputs when that was its last piece. */
  output(item: number, path: OutputPath, part: Part): Part[] | undefined {
    const e = this.live.get(item);
    if (!e) return undefined;
    e.outputs.push({ path, part });
    return this.pieceDone(item, e);
  }

  /** A piece of `item` was dropped (a filter, a `flatMap` that made nothing, an error skipped). */
  drop(item: number): Part[] | undefined {
    const e = this.live.get(item);
    return e ? this.pieceDone(item, e) : undefined;
  }

  private pieceDone(item: number, e: Live): Part[] | undefined {
    if (--e.pieces > 0) return undefined;
    this.live.delete(item);
    if (e.outputs.length > 1) e.outputs.sort((a, b) => comparePaths(a.path, b.path));
    return e.outputs.map((o) => o.part);
  }
}

function comparePaths(a: OutputPath, b: OutputPath): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
