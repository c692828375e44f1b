/**
 * The executor thread: it holds the engine namespace (this thread's global scope) and runs user
 * code. The supervisor on the main thread keeps the socket and the heartbeats, so user code that
 * spins never silences the engine, and the executor can be replaced to reset the namespace.
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { join } from "node:path";
import { flushPendingWrites } from "@ptcluster/protocol/lean";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  MessageTooLargeError,
  encodeValue,
  encodedSize,
  type EngineTask,
  type TaskResult,
  type Part,
} from "@ptcluster/protocol";
import { installOutputCapture, taskStore, type TaskContext } from "./capture.js";
import { toFailure, unsendableFailure } from "./failure.js";
import type { ClientSetup, ExecutorData, FromExecutor, ToExecutor } from "./protocol.js";
import { packFrames, unpackFrames, type Packed } from "../shared/transfer.js";
import { mpiFromEnv } from "../shared/mpi.js";
import { StartTable } from "../shared/start-table.js";
import { ExecJournal } from "../shared/exec-journal.js";
import { QUICK_MS } from "../shared/quick-tasks.js";
import { commPort } from "./comm-port.js";
import { sharedNamespace } from "./shared-port.js";
import { CommGroups } from "../comm/group.js";
import { commOf } from "./comm.js";
import { defineTranspilerHelpers } from "./transpiler-helpers.js";
import { forgetSources, originOf, perform, sources } from "./perform.js";
import { encodeCompletion } from "./completion.js";
import { ExecutorShm } from "./shm-values.js";
import { ClientTasks } from "./client-tasks.js";

const port = parentPort;
if (!port) throw new Error("the executor runs in a worker thread");

const shared = sharedNamespace(port);
const comm = commPort(
  port,
  () => commGroups,
  () => engineInfo.id,
);
const commGroups: CommGroups = new CommGroups(
  (msg, parts) => comm.send(msg, parts),
  () => engineInfo.id,
  (workerData as ExecutorData | undefined)?.maxResultBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
);

/** What shipped code sees as the global `engine`. */
const engineInfo = {
  id: -1,
  host: hostname(),
  pid: process.pid,
  uuid: "",
  /** Rank and size of the MPI job this engine runs in (started under `mpiexec`), else undefined. */
  mpi: mpiFromEnv(),
  /** The cancellation signal of the task running now (per task, even with concurrency above 1). */
  get signal(): AbortSignal | undefined {
    return taskStore.getStore()?.controller.signal;
  },
  /** This task's group, in a task of a DirectView call (rank, size, send, recv); undefined in load-balanced tasks. */
  get comm(): unknown {
    return taskStore.getStore()?.comm?.();
  },
  /** Named objects held by the controller, as `rc.shared` in a client. */
  shared: shared.namespace,
};

const g = globalThis as Record<string, unknown>;
g["engine"] = engineInfo;
// tsx (esbuild) rewrites nested named functions and `await using` into calls of its helpers.
defineTranspilerHelpers(g);
g["require"] = createRequire(join(process.cwd(), "__ptcluster_engine__.js"));
// Module tasks import their module through this: TypeScript modules load through tsx's loader,
// registered on first use so engines that never see one do not pay for it.
let tsxRegistered: Promise<void> | undefined;
g["__ptcImport"] = async (url: string): Promise<unknown> => {
  if (/\.(c|m)?tsx?$/.test(url)) {
    tsxRegistered ??= import("tsx/esm/api").then((m: { register: () => unknown }) => void m.register());
    await tsxRegistered;
  }
  return import(url);
};
installOutputCapture();

const shm = new ExecutorShm((workerData as ExecutorData | undefined)?.shm);
const running = new Map<number, TaskContext>();
const concurrency = Math.max(1, (workerData as ExecutorData | undefined)?.concurrency ?? 1);
const maxResultBytes = (workerData as ExecutorData | undefined)?.maxResultBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
const startTable = new StartTable(
  (workerData as ExecutorData | undefined)?.startTable ?? StartTable.allocate(concurrency),
);
/** Slots of the start table not in use. */
const freeSlots = Array.from({ length: concurrency }, (_, i) => concurrency - 1 - i);
/**
 * Tasks received and not started: empty unless the supervisor prefetches (it posts no more than
 * the free slots otherwise). They start in order as slots free up.
 */
const waiting: Array<{ task: EngineTask; body: Buffer; frames: Buffer[] }> = [];

/** Takes the queued tasks `which` picks out of the queue, their shared-memory files removed; returns their ids. */
function unqueueWhere(which: (id: number) => boolean): number[] {
  const taken: number[] = [];
  for (let i = waiting.length - 1; i >= 0; i--) {
    const w = waiting[i]!;
    if (!which(w.task.id)) continue;
    waiting.splice(i, 1);
    shm.discard(w.frames);
    taken.push(w.task.id);
  }
  return taken;
}
let active = 0;
/** What goes to the supervisor in the next report. */
const outbox: {
  started: Array<[number, number]>;
  results: Array<{ result: TaskResult; data: Packed }>;
  dropped: number[];
  dups: number[];
  transfer: ArrayBuffer[];
} = {
  started: [],
  results: [],
  dropped: [],
  dups: [],
  transfer: [],
};
let flushScheduled = false;

/** Clients' direct links owned here (`client-tasks.ts`): their tasks' starts and results skip the per-turn report. */
let clientTasks: ClientTasks | undefined;
/** Every start, written before the task's code runs (`shared/exec-journal.ts`). */
let journal: ExecJournal | undefined;
function openClientTasks(setup: ClientSetup, gen: number): void {
  if (clientTasks) return;
  clientTasks = new ClientTasks(
    {
      engineId: () => engineInfo.id,
      run: (task, body, frames) => {
        waiting.push({ task, body, frames });
        drain();
      },
      unqueue: (id) => unqueueWhere((w) => w === id).length > 0,
      abort: (id, reason) => running.get(id)?.controller.abort(new Error(reason)),
      post: (m, transfer) => port!.postMessage(m, transfer ?? []),
      journaled: () => journal?.written ?? 0,
    },
    gen,
  );
  // No endpoint: clients keep the supervisor's lean link, as before.
  clientTasks.start(setup).catch(() => undefined);
}

// `process.exit` in a task ends this thread. Say which task called it (the supervisor fails that one
// with TaskCrashedError, and runs again elsewhere those that merely shared the thread), and send what
// finished meanwhile first, so no result is lost with the thread.
const exitThread = process.exit.bind(process);
function endThread(call: string, code: number | string | null | undefined): never {
  flush();
  clientTasks?.flush();
  port!.postMessage({ type: "exiting", task: taskStore.getStore()?.id, call } satisfies FromExecutor);
  return exitThread(code);
}
process.exit = ((code?: number | string | null) =>
  endThread(`process.exit(${code ?? ""})`, code)) as typeof process.exit;
// `process.abort()` would take the whole engine process down (and every engine after it, the task
// being re-run on each): it ends only this thread, as a crash of the task (code 134, as SIGABRT).
process.abort = (() => endThread("process.abort()", 134)) as typeof process.abort;

port.on("message", onMessage);

function onMessage(msg: ToExecutor): void {
  switch (msg.type) {
    case "init":
      engineInfo.id = msg.engineId;
      shm.engineId = msg.engineId;
      engineInfo.host = msg.host;
      engineInfo.uuid = msg.uuid;
      break;
    case "tasks":
      for (const { task, data } of msg.items) {
        // Kept on arrival, not when the task runs: the supervisor sends a source once per
        // executor, with the first task of that function, and that task may be dropped unstarted.
        if (task.fn && task.src !== undefined) sources.set(task.fn, task.src);
        const [body, ...frames] = unpackFrames(data);
        // Resent on the supervisor's link while its first copy came on this executor's own: runs once.
        if (task.dx !== undefined && clientTasks?.knows(task.dx)) {
          shm.discard(frames);
          outbox.dups.push(task.id);
          scheduleFlush();
          continue;
        }
        waiting.push({ task, body: body ?? Buffer.alloc(0), frames });
      }
      drain();
      break;
    case "forget":
      forgetSources(msg.fns);
      break;
    case "shared_reply":
      shared.settle(msg.msg, msg.data);
      break;
    case "comm_in":
    case "comm_setup":
    case "comm_route":
      comm.fromSupervisor(msg);
      break;
    case "client_setup":
      openClientTasks(msg.setup, msg.gen);
      break;
    case "journal":
      journal = new ExecJournal(msg.journal);
      break;
    case "exec_cancel":
      clientTasks?.cancel(msg.keys);
      break;
    case "client_drop":
      // Tasks from clients' links not started yet go with the links (running ones are the supervisor's to stop).
      for (const id of unqueueWhere((id) => clientTasks?.has(id) === true)) clientTasks?.forget(id);
      clientTasks?.dropLinks();
      break;
    case "drop": {
      const wanted = new Set(msg.ids);
      for (const id of unqueueWhere((id) => wanted.delete(id))) {
        outbox.dropped.push(id);
        clientTasks?.forget(id);
      }
      if (msg.abort !== undefined) {
        // Never the task's own result to its client now: the supervisor's verdict goes instead.
        clientTasks?.aborting([...wanted]);
        for (const id of wanted) running.get(id)?.controller.abort(new Error(msg.abort));
      }
      if (outbox.dropped.length) scheduleFlush();
      break;
    }
  }
}
port.postMessage({ type: "ready" } satisfies FromExecutor);

/** Recent functions' slowest run time (ms), decaying by a tenth a task, by hash (at most 1,024 kept). */
const fnMs = new Map<string, number>();

function quickFn(task: EngineTask): boolean {
  const ms = task.fn === undefined ? undefined : fnMs.get(task.fn);
  return ms !== undefined && ms < QUICK_MS;
}

function timed(task: EngineTask, ms: number): void {
  if (task.fn === undefined) return;
  const before = fnMs.get(task.fn);
  if (before === undefined && fnMs.size >= 1_024) fnMs.clear();
  fnMs.set(task.fn, before === undefined ? ms : Math.max(ms, 0.9 * before));
}

/** True while `drain` runs: a `tasks` message it reads adds to the queue it is working down. */
let draining = false;

/**
 * Starts what the free slots allow. Each start is written to the start table before the task's
 * code runs (a task that never yields cannot hide it), and reported with the turn's results.
 */
function drain(): void {
  if (draining) return;
  draining = true;
  try {
    startWaiting();
  } finally {
    draining = false;
  }
}

function startWaiting(): void {
  for (;;) {
    // What came while a task held the thread is read before anything starts: a `drop` that
    // follows the `tasks` message of a task posted ahead must remove it before it can run.
    for (let m = receiveMessageOnPort(port!); m !== undefined; m = receiveMessageOnPort(port!))
      onMessage(m.message as ToExecutor);
    if (active >= concurrency || waiting.length === 0) return;
    const w = waiting.shift() as { task: EngineTask; body: Buffer; frames: Buffer[] };
    // Results made this turn go before another task's code runs, unless its function has been
    // quick: that task may hold the thread for long (a computation that never yields), and they
    // would wait for it, their starts unreported too (a cancel meanwhile would take one that ran
    // for one never started). So do the writes on clients' and peers' links. Quick functions
    // keep one report per turn (a message per task cost a stream of noop tasks about 5%): a
    // function quick so far that then holds the thread still holds back the results before it.
    if (!quickFn(w.task)) {
      if (outbox.results.length) flush();
      flushPendingWrites();
    }
    active++;
    const slot = freeSlots.pop() as number;
    const at = Date.now();
    startTable.set(slot, w.task.id, at);
    // Where the supervisor reads it if this thread is replaced (or held) before the report goes.
    journal?.started(w.task.id);
    if (clientTasks?.has(w.task.id)) clientTasks.started(w.task.id, at);
    else {
      outbox.started.push([w.task.id, at]);
      scheduleFlush();
    }
    void runTask(w.task, w.body, w.frames, slot, at);
  }
}

/** Results go out in batches: one message for all the results of one turn of the event loop. */
function deliver(result: TaskResult, out: { body: Buffer; frames: Buffer[] }): void {
  const data = packFrames([out.body, ...out.frames]);
  outbox.results.push({ result, data });
  outbox.transfer.push(...data.buffers);
  scheduleFlush();
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  // After the poll phase: every task message already received and every task they start in this
  // turn finish first, so their results travel together.
  setImmediate(() => {
    flushScheduled = false;
    flush();
  });
}

/** Posts one report: whatever starts, results and drops are waiting. */
function flush(): void {
  const { started, results, dropped, dups, transfer } = outbox;
  if (started.length === 0 && results.length === 0 && dropped.length === 0 && dups.length === 0) return;
  outbox.dups = [];
  outbox.started = [];
  outbox.results = [];
  outbox.dropped = [];
  outbox.transfer = [];
  port!.postMessage({ type: "report", started, results, dropped, dups } satisfies FromExecutor, transfer);
}

async function runTask(task: EngineTask, body: Buffer, frames: Buffer[], slot: number, started: number): Promise<void> {
  const ctx: TaskContext = { id: task.id, stdout: [], stderr: [], controller: new AbortController() };
  running.set(task.id, ctx);
  const group = task.comm ? commGroups.open(task.comm, ctx.controller.signal) : undefined;
  let comm: ReturnType<typeof commOf> | undefined;
  const wire = group?.wire;
  if (wire) ctx.comm = () => (comm ??= commOf(wire)).comm;
  let ok = true;
  let out: { body: Buffer; frames: Buffer[] };
  try {
    const args = shm.read(body, frames);
    const value = await taskStore.run(ctx, () => perform(task, body, args));
    if (task.op === "execute") out = encodeCompletion(value, maxResultBytes);
    else if (task.op === "stage") {
      out = value as Part;
      const bytes = encodedSize(out);
      if (bytes > maxResultBytes)
        throw new MessageTooLargeError("The results of the stage task", bytes, maxResultBytes);
    } else {
      try {
        out = encodeValue(value, "result", undefined, { returned: true });
        const bytes = encodedSize(out);
        if (bytes > maxResultBytes) throw new MessageTooLargeError("The result", bytes, maxResultBytes);
      } catch (err) {
        ok = false;
        out = encodeValue(
          err instanceof MessageTooLargeError ? toFailure(err) : unsendableFailure(err, task.op === "map"),
        );
      }
    }
  } catch (err) {
    ok = false;
    // The other ranks may wait on this one: they learn it failed rather than wait for their timeout.
    group?.failed(err);
    out = encodeValue(toFailure(err, originOf));
  }
  running.delete(task.id);
  out = shm.write(task, out);
  comm?.close();
  group?.close();
  startTable.clear(slot);
  freeSlots.push(slot);
  const result: TaskResult = { id: task.id, ok, engine: engineInfo.id, started, completed: Date.now() };
  timed(task, result.completed - started);
  if (ctx.stdout.length) result.stdout = ctx.stdout.join("");
  if (ctx.stderr.length) result.stderr = ctx.stderr.join("");
  active--;
  if (!clientTasks?.finished(result, out)) deliver(result, out);
  // The result's files are made, not filled: it goes now, and its client reads while this writes
  // (before the next task runs, which could change the value).
  if (shm.pending) {
    flush();
    shm.flushWrites();
  }
  drain();
}
