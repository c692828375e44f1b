import { once } from "node:events";
import * as readline from "node:readline";
import * as repl from "node:repl";
import { PassThrough } from "node:stream";
import * as client from "@ptcluster/client";
import { trackRunningLines } from "./repl-lines.js";

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
  // breakEvalOnSigint, as in `node`'s own REPL: Ctrl-C stops the line being evaluated, running or awaiting;
  // the line tracker then cancels the remote calls that line left running (repl-lines.ts).
  const server = repl.start({
    prompt: "ptcluster> ",
    useGlobal: true,
    input,
    output: process.stdout,
    terminal,
    breakEvalOnSigint: true,
  });
  Object.assign(server.context, { rc, ...client });
  // The connection's state changes while the user types: said on a line of its own, prompt redrawn.
  const say = (line: string) => {
    process.stdout.write(`\n${line}\n`);
    if (terminal) server.displayPrompt(true);
  };
  rc.on("hub_lost", (err) => say(err.message));
  rc.on("reconnected", () =>
    say(`The controller answers again: \`rc\` is connected (engines [${rc.ids.join(", ")}]).`),
  );
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
