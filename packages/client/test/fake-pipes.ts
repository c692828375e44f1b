import {
  decodeValue,
  encodeValue,
  type Part,
  type PipeOnError,
  type PipeStage,
  type StageStats,
} from "@ptcluster/protocol";
import type { PipeHandle, PipePort, PipeSink } from "../src/pipeline/pipe-port.js";

/** What a client sent for one pipe. */
export interface FakePipe {
  pipe: number;
  stages: PipeStage[];
  scopes: unknown[];
  onError: PipeOnError;
  sink: PipeSink;
  /** Input items received, by index. */
  items: Map<number, unknown>;
  /** Items per `pipe_items` message, in order. */
  batches: number[];
  total: number | undefined;
  cancelled: string | undefined;
  closed: boolean;
  busy: boolean;
  /** Items reported finished. */
  finished: number;
  /** The last message (`end`) was sent, as the controller does once the input ended and every item finished. */
  ended: boolean;
}

/**
 * A controller in a test: records what a pipeline run sends, and answers when the test says, or
 * at once with `auto` (each item's outputs from `outputs(value)`), so the client's window,
 * ordering and memory can be checked without processes.
 */
export class FakeController implements PipePort {
  maxMessageBytes = 1_000_000;
  readonly pipes: FakePipe[] = [];
  open = true;
  auto: ((value: unknown) => unknown[]) | undefined;

  assertOpen(): void {
    if (!this.open) throw new Error("closed");
  }

  openPipe(stages: PipeStage[], scopes: Part[], onError: PipeOnError, sink: PipeSink): PipeHandle {
    const p: FakePipe = {
      pipe: this.pipes.length + 1,
      stages,
      scopes: scopes.map((s) => (s.body.length === 0 ? undefined : decodeValue(s.body, s.frames))),
      onError,
      sink,
      items: new Map(),
      batches: [],
      total: undefined,
      cancelled: undefined,
      closed: false,
      busy: false,
      finished: 0,
      ended: false,
    };
    this.pipes.push(p);
    return {
      pipe: p.pipe,
      items: (first, parts) => {
        p.batches.push(parts.length);
        const got: Array<[number, unknown]> = parts.map((part, i) => [first + i, decodeValue(part.body, part.frames)]);
        for (const [k, v] of got) p.items.set(k, v);
        const auto = this.auto;
        if (auto)
          setImmediate(() =>
            this.finish(
              p,
              got.map(([k, v]) => [k, auto(v)]),
            ),
          );
      },
      end: (total) => {
        p.total = total;
        // Everything had finished already: the controller's last message still comes.
        if (p.finished === total) setImmediate(() => this.finish(p, []));
      },
      cancel: (reason) => (p.cancelled = reason),
      busy: (on) => (p.busy = on),
      close: () => (p.closed = true),
    };
  }

  /** The last pipe opened. */
  get last(): FakePipe {
    const p = this.pipes.at(-1);
    if (!p) throw new Error("no pipe opened");
    return p;
  }

  /** Reports items finished with their outputs, in the order given; forgets their inputs. */
  finish(p: FakePipe, done: Array<[number, unknown[]]>, stats?: StageStats[]): void {
    const parts: Part[] = [];
    for (const [k, outs] of done) {
      p.items.delete(k);
      for (const o of outs) parts.push(encodeValue(o));
    }
    p.finished += done.length;
    const end = !p.ended && p.total !== undefined && p.finished === p.total;
    if (end) p.ended = true;
    p.sink.onOut(
      {
        type: "pipe_out",
        pipe: p.pipe,
        done: done.map(([k, outs]) => [k, outs.length]),
        pf: parts.map((x) => x.frames.length),
        ...(stats ? { stats } : {}),
        ...(end ? { end } : {}),
      },
      parts,
    );
  }
}

/** Turns of the event loop, so batches flush and answers arrive. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
