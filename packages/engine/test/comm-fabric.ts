import { CommCancelledError, CommTimeoutError, commError } from "@ptcluster/protocol";
import type { CallOptions, CollectiveMeta, Received, Wire } from "../src/comm/wire.js";

/**
 * An in-memory group of `size` ranks implementing `Wire`, for unit tests of the collectives:
 * messages between one pair of ranks arrive in the order sent, while with `shuffle` the
 * messages of different pairs overtake each other (a random number of event-loop turns each),
 * to catch algorithms that assume more ordering than the Wire promises. Counts the messages and
 * typed-array bytes each rank sends.
 */

interface Message {
  source: number;
  channel: string;
  value: unknown;
  meta: CollectiveMeta | undefined;
}

interface Waiter {
  source: number | undefined;
  channel: string;
  resolve: (message: Message) => void;
  reject: (error: Error) => void;
}

export interface FabricOptions {
  /** Delay every message by 0–3 event-loop turns, chosen at random per message. */
  shuffle?: boolean;
}

export class Fabric {
  readonly wires: FabricWire[];
  readonly bytesSent: number[];
  readonly messagesSent: number[];
  /** Messages sent on the collectives' data channels (`c:<n>`), the checks to rank 0 left out. */
  dataMessages = 0;
  abortError: { code: string; message: string } | undefined;
  private readonly aborted: Promise<{ code: string; message: string }>;
  private resolveAborted!: (error: { code: string; message: string }) => void;
  private readonly mailboxes: Message[][];
  private readonly waiters: Waiter[][];
  private readonly chains = new Map<string, Promise<void>>();
  private readonly watchers = new Map<string, (source: number, value: unknown) => void>();

  constructor(
    readonly size: number,
    private readonly options: FabricOptions = {},
  ) {
    this.wires = Array.from({ length: size }, (_, rank) => new FabricWire(this, rank));
    this.bytesSent = new Array<number>(size).fill(0);
    this.messagesSent = new Array<number>(size).fill(0);
    this.mailboxes = Array.from({ length: size }, () => []);
    this.waiters = Array.from({ length: size }, () => []);
    this.aborted = new Promise((resolve) => (this.resolveAborted = resolve));
  }

  /** Resolves with the error the group was aborted with. */
  whenAborted(): Promise<{ code: string; message: string }> {
    return this.aborted;
  }

  send(source: number, dest: number, channel: string, value: unknown, meta: CollectiveMeta | undefined): Promise<void> {
    if (this.abortError) return Promise.reject(this.groupError());
    if (!(Number.isInteger(dest) && dest >= 0 && dest < this.size))
      throw new Error(`send to rank ${dest} of ${this.size}`);
    // A copy now, as a transport would serialise it: typed arrays copy only their view's bytes.
    const copy = ArrayBuffer.isView(value) ? (value as Uint8Array).slice() : structuredClone(value);
    if (ArrayBuffer.isView(value)) this.bytesSent[source]! += value.byteLength;
    this.messagesSent[source]!++;
    if (channel !== "c:check") this.dataMessages++;
    const message: Message = { source, channel, value: copy, meta: meta && { ...meta } };
    const key = `${source}>${dest}`;
    const previous = this.chains.get(key) ?? Promise.resolve();
    const turns = this.options.shuffle ? Math.floor(Math.random() * 4) : 0;
    const next = previous.then(async () => {
      for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
      this.deliver(dest, message);
    });
    this.chains.set(key, next);
    return Promise.resolve();
  }

  recv(rank: number, source: number | undefined, channel: string, options: CallOptions = {}): Promise<Message> {
    if (this.abortError) return Promise.reject(this.groupError());
    const box = this.mailboxes[rank]!;
    const at = box.findIndex((m) => m.channel === channel && (source === undefined || m.source === source));
    if (at >= 0) return Promise.resolve(box.splice(at, 1)[0]!);
    if (options.signal?.aborted) return Promise.reject(new CommCancelledError(`recv on rank ${rank} cancelled`));
    return new Promise<Message>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => settle(() => reject(new CommCancelledError(`recv on rank ${rank} cancelled`)));
      const settle = (action: () => void): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        const list = this.waiters[rank]!;
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        action();
      };
      const waiter: Waiter = {
        source,
        channel,
        resolve: (m) => settle(() => resolve(m)),
        reject: (e) => settle(() => reject(e)),
      };
      if (options.timeout !== undefined) {
        timer = setTimeout(
          () => waiter.reject(new CommTimeoutError(`recv on rank ${rank} timed out`)),
          options.timeout,
        );
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters[rank]!.push(waiter);
    });
  }

  abort(error: { code: string; message: string }): void {
    if (this.abortError) return;
    this.abortError = error;
    this.resolveAborted(error);
    for (const list of this.waiters) for (const w of [...list]) w.reject(this.groupError());
  }

  /** As `Wire.watch`: messages on `channel` to `rank` go to `handler` as they are delivered. */
  watch(rank: number, channel: string, handler: (source: number, value: unknown) => void): () => void {
    const key = `${rank}>${channel}`;
    this.watchers.set(key, handler);
    const box = this.mailboxes[rank]!;
    for (
      let i = box.findIndex((m) => m.channel === channel);
      i >= 0 && !this.abortError;
      i = box.findIndex((m) => m.channel === channel)
    ) {
      const [m] = box.splice(i, 1);
      handler(m!.source, m!.value);
    }
    return () => {
      if (this.watchers.get(key) === handler) this.watchers.delete(key);
    };
  }

  private deliver(dest: number, message: Message): void {
    if (this.abortError) return;
    const watcher = this.watchers.get(`${dest}>${message.channel}`);
    if (watcher) return watcher(message.source, message.value);
    const waiter = this.waiters[dest]!.find(
      (w) => w.channel === message.channel && (w.source === undefined || w.source === message.source),
    );
    if (waiter) waiter.resolve(message);
    else this.mailboxes[dest]!.push(message);
  }

  private groupError(): Error {
    return commError(this.abortError!.code, this.abortError!.message);
  }
}

export class FabricWire implements Wire {
  readonly size: number;
  constructor(
    private readonly fabric: Fabric,
    readonly rank: number,
  ) {
    this.size = fabric.size;
  }

  send(dest: number, channel: string, value: unknown, meta?: CollectiveMeta): Promise<void> {
    return this.fabric.send(this.rank, dest, channel, value, meta);
  }

  async recv(source: number, channel: string, options?: CallOptions): Promise<Received> {
    const m = await this.fabric.recv(this.rank, source, channel, options);
    return { value: m.value, meta: m.meta };
  }

  async recvAny(channel: string, options?: CallOptions): Promise<Received & { source: number }> {
    const m = await this.fabric.recv(this.rank, undefined, channel, options);
    return { value: m.value, meta: m.meta, source: m.source };
  }

  watch(channel: string, handler: (source: number, value: unknown) => void): () => void {
    return this.fabric.watch(this.rank, channel, handler);
  }

  release(): void {
    // Nothing to reuse: the fabric's values are the test's own.
  }

  abort(error: { code: string; message: string }): void {
    this.fabric.abort(error);
  }
}
