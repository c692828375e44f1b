import { AsyncLocalStorage } from "node:async_hooks";
import { once, type EventEmitter } from "node:events";
import * as readline from "node:readline";
import * as repl from "node:repl";
import { PassThrough } from "node:stream";
import * as client from "@ptcluster/client";

/** `ptcluster repl`: a Node REPL with `rc` connected (top-level await works). */
export async function startRepl(o: { profile: string; clusterId: string }): Promise<void> {
  const rc = await client.connect({ profile: o.profile, clusterId: o.clusterId });
  process.stdout.write(
    `Connected to profile ${o.profile}${o.clusterId ? ` (cluster id ${o.clusterId})` : ""}: engines [${rc.ids.join(", ")}]. \`rc\` is your client; try \`await rc.view().applySync(() => "Hello, World")\`.\n`,
  );
  // Node's REPL is in terminal mode when its output is a terminal, and then holds typed (or piped)
  // input back while an `await` line runs. Without a terminal it evaluates every line as soon as it
  // arrives, so piped lines would run at once, each before the one above has finished (`_error`
  // from the line above not yet set): there, lines are handed to it one at a time instead.
  const terminal = Boolean(process.stdout.isTTY);
  const input = terminal ? process.stdin : new PassThrough();
  const server = repl.start({ prompt: "ptcluster> ", useGlobal: true, input, output: process.stdout, terminal });
  Object.assign(server.context, { rc, ...client });
  const lines = trackRunningLines(server);
  const exited = new Promise<void>((resolve) => server.on("exit", () => resolve()));
  if (input instanceof PassThrough) void feedOneLineAtATime(process.stdin, input, server, exited, lines);
  await exited;
  // Input piped in (`... | ptcluster repl`) can end while an `await` line is still running: let
  // the lines already entered finish, and print, before the client closes.
  await lines.settled();
  await rc.close();
}

/** Writes `source`'s lines to the REPL's input, each once the line before it has been evaluated. */
async function feedOneLineAtATime(
  source: NodeJS.ReadableStream,
  sink: PassThrough,
  server: repl.REPLServer,
  exited: Promise<void>,
  lines: { settled(): Promise<void> },
): Promise<void> {
  const rl = readline.createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY, terminal: false });
  const next = rl[Symbol.asyncIterator]();
  // Every wait also ends when the REPL does (`.exit`, whose own 'exit' may come a little later).
  const gone = exited.then(() => "exited" as const);
  try {
    for (;;) {
      const item = await Promise.race([next.next(), gone]);
      if (item === "exited" || item.done) break;
      // The REPL's own 'line' listener, registered first, has started the line's evaluation by the
      // time this one runs.
      const taken = once(server, "line");
      sink.write(`${item.value}\n`);
      if ((await Promise.race([taken, gone])) === "exited") break;
      if ((await Promise.race([lines.settled(), gone])) === "exited") break;
    }
  } finally {
    rl.close();
    // Leaving early (`.exit`) leaves the input flowing, which would keep the process up until
    // whatever writes to it stops.
    source.pause();
    sink.end();
  }
}

/**
 * Counts the lines being evaluated, so that exit can wait for them.
 *
 * A line ends in one of two ways, and both must count: Node's REPL calls the eval callback when
 * the line succeeds, but when it throws (synchronously, or as an awaited rejection) its default
 * eval hands the error to the REPL's domain, which prints it, and never calls the callback. A
 * count kept in the callback alone therefore never returned to zero after the first error, and
 * `.exit`, Ctrl-D and the end of piped input then waited for ever. Each line runs in its own
 * AsyncLocalStorage context, which the awaited continuation of a top-level `await` inherits, so
 * the domain's error listener can tell which line just ended; a line counts once, however it ends.
 */
function trackRunningLines(server: repl.REPLServer): { settled(): Promise<void> } {
  const running = new Set<symbol>();
  const line = new AsyncLocalStorage<symbol>();
  let idle: Array<() => void> = [];
  const end = (token: symbol | undefined): void => {
    if (token === undefined || !running.delete(token) || running.size > 0) return;
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
  // Registered after the REPL's own listener: the error is printed before the line counts as done.
  domain.on("error", () => end(line.getStore()));
  const evaluate = server.eval;
  const tracked: repl.REPLEval = function (this: repl.REPLServer, code, context, file, cb) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the named function below must not be an arrow (see there)
    const self = this;
    const token = Symbol("line");
    running.add(token);
    // A named function: the REPL trims an error's stack below the last frame without a name,
    // and an arrow here would put the REPL's and ptcluster's own frames in every error shown.
    line.run(token, function evaluateLine() {
      try {
        evaluate.call(self, code, context, file, (err, result) => {
          try {
            cb(err, result);
          } finally {
            end(token);
          }
        });
      } catch (err) {
        end(token);
        throw err;
      }
    });
  };
  (server as unknown as { eval: repl.REPLEval }).eval = tracked;
  return {
    settled: () => (running.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve))),
  };
}
