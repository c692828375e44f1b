import { AsyncLocalStorage } from "node:async_hooks";
import type { EventEmitter } from "node:events";
import type * as repl from "node:repl";
import { AsyncResult } from "@ptcluster/client";
import { withResultScope, type ScopedResult } from "@ptcluster/client/result-scope";
import { CTRL_C, cancelUnfinished, describeCancelled } from "./repl-cancel.js";

/** One line being evaluated, and the remote calls it made. */
interface Line {
  /** The results this line created while it ran (finished ones are swept out now and then). */
  readonly results: Set<ScopedResult>;
  /** Results at the last sweep: the next one comes when there are twice as many. */
  sweepAt: number;
  ended: boolean;
  /** Interrupted by Ctrl-C: whatever its code still starts afterwards is cancelled at once. */
  interrupted: boolean;
}

/** Node's error for an evaluation stopped by SIGINT (`breakEvalOnSigint`). */
const INTERRUPTED = "ERR_SCRIPT_EXECUTION_INTERRUPTED";

/**
 * Tracks the lines being evaluated, so that exit can wait for them and Ctrl-C can cancel what the
 * interrupted line started.
 *
 * A line ends in one of two ways, and both must count: Node's REPL calls the eval callback when
 * the line succeeds, but when it throws (synchronously, or as an awaited rejection) its default
 * eval hands the error to the REPL's domain, which prints it, and never calls the callback. A
 * count kept in the callback alone therefore never returned to zero after the first error, and
 * `.exit`, Ctrl-D and the end of piped input then waited for ever. Each line runs in its own
 * AsyncLocalStorage context, which the awaited continuation of a top-level `await` inherits, so
 * the domain's error listener can tell which line just ended; a line counts once, however it ends.
 *
 * Ctrl-C: the REPL runs with `breakEvalOnSigint`, so Node stops a line at Ctrl-C, whether it is
 * running synchronous code or awaiting, and reports ERR_SCRIPT_EXECUTION_INTERRUPTED through the
 * domain. The line's context is also a result scope of the client: every AsyncResult, map and
 * imap stream the line created (and not one of an earlier line) is recorded, so the interruption
 * aborts the ones still unfinished and prints one line saying so in place of Node's error. A line
 * that made no remote call left unfinished gets Node's own message.
 */
export function trackRunningLines(server: repl.REPLServer): { settled(): Promise<void> } {
  const running = new Set<Line>();
  const current = new AsyncLocalStorage<Line>();
  let idle: Array<() => void> = [];
  const end = (line: Line | undefined): void => {
    if (line === undefined || !running.delete(line)) return;
    line.ended = true;
    line.results.clear();
    if (running.size > 0) return;
    const waiting = idle;
    idle = [];
    for (const resolve of waiting) resolve();
  };
  // Not in Node's typings, but every REPLServer has had it since domains were introduced; fail
  // loudly here rather than hang at exit if that ever changes.
  const domain = (server as unknown as { _domain?: EventEmitter })._domain;
  if (!domain || typeof domain.on !== "function")
    throw new Error(
      "This Node's REPL has no error domain; ptcluster repl cannot track failing lines. Use Node 20.12 or later.",
    );
  // Node's own listener prints the error ("Uncaught …") and shows the prompt. It is called from
  // here, except for an interruption that cancelled tasks, which gets one line of its own instead.
  const printError = domain.listeners("error") as Array<(e: unknown) => void>;
  domain.removeAllListeners("error");
  domain.on("error", function onLineError(this: EventEmitter, e: unknown) {
    const line = current.getStore();
    const interrupted = isInterruption(e);
    const summary = line && interrupted ? interrupt(line) : undefined;
    // Node's interruption error has no frame of the user's code (it is made where the evaluation
    // was stopped), only the REPL's and ptcluster's own: its first line says it all.
    if (interrupted && summary === undefined) keepFirstLine(e as Error);
    if (summary === undefined) for (const listener of printError) listener.call(this, e);
    else {
      server.output.write(`${summary}\n`);
      server.clearBufferedCommand();
      server.displayPrompt();
    }
    // After the print: the error shows before the line counts as done.
    end(line);
  });

  const evaluate = server.eval;
  const tracked: repl.REPLEval = function (this: repl.REPLServer, code, context, file, cb) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the named function below must not be an arrow (see there)
    const self = this;
    const line: Line = { results: new Set(), sweepAt: 64, ended: false, interrupted: false };
    running.add(line);
    // Named functions: the REPL trims an error's stack below the last frame without a name,
    // and an arrow here would put the REPL's and ptcluster's own frames in every error shown.
    current.run(line, function trackLine() {
      withResultScope((r) => record(line, r), evaluateLine);
    });
    function evaluateLine() {
      try {
        evaluate.call(self, code, context, file, (err, result) => {
          try {
            cb(err, result);
          } finally {
            end(line);
          }
        });
      } catch (err) {
        end(line);
        throw err;
      }
    }
  };
  (server as unknown as { eval: repl.REPLEval }).eval = tracked;
  return {
    settled: () => (running.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve))),
  };
}

function isInterruption(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === INTERRUPTED;
}

function keepFirstLine(e: Error): void {
  try {
    e.stack = `${e.name}: ${e.message}`;
  } catch {
    /* a frozen error prints as it is */
  }
}

/** Ctrl-C stopped `line`: cancels what it left running; the line to print, if it cancelled anything. */
function interrupt(line: Line): string | undefined {
  line.interrupted = true;
  const summary = describeCancelled(cancelUnfinished(line.results));
  line.results.clear();
  return summary;
}

/** A result made in `line`'s context (by the line, or by callbacks it set up). */
function record(line: Line, r: ScopedResult): void {
  // The code of an interrupted line can run on (a loop that catches the cancellation, a timer):
  // Ctrl-C meant to stop it, so what it starts now is cancelled at once.
  if (line.interrupted) r.abort(CTRL_C);
  // A line that has finished keeps nothing: a timer it left behind is not part of a later line.
  if (line.ended) return;
  line.results.add(r);
  // A long line making many calls one after another must not keep every finished result.
  if (line.results.size >= line.sweepAt) {
    for (const x of line.results) if (x instanceof AsyncResult && x.ready()) line.results.delete(x);
    line.sweepAt = Math.max(64, 2 * line.results.size);
  }
}
