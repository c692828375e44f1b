#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { PACKAGE_VERSION } from "@ptcluster/protocol";
import { ABORT, ENGINE, ENGINES, GRAMMAR, HUB, LIST, REPL, START, STATUS, STOP, valuesOf } from "./options.js";
import { reportFailure } from "./util/cli-error.js";
import { reportUsage, unknownWord, UsageError } from "./util/usage.js";

function run<T>(command: string, f: (argv: T) => Promise<void> | void) {
  return async (argv: T) => {
    try {
      await f(argv);
    } catch (err) {
      reportFailure(command, err);
    }
  };
}

const args = hideBin(process.argv);
/** The command word, for messages (undefined before one is given). */
const commandWord = args.find((a) => !a.startsWith("-"));

// A mistyped command or flag gets one line naming the closest known one (as git and npm do), not the help.
const unknown = unknownWord(args, GRAMMAR);
if (unknown) {
  reportUsage(unknown.command, unknown.error.message);
  process.exit(process.exitCode);
}

await yargs(args)
  .scriptName("ptcluster")
  // Numbers stay text until their option's check reads them, so messages quote what was typed.
  .parserConfiguration({ "parse-numbers": false })
  .version(PACKAGE_VERSION)
  .usage("$0 <command> [options]\n\nRun Node.js and TypeScript code on a cluster of engines, ipyparallel-style.")
  .command(
    "start",
    "start a controller and engines; returns once every engine has registered",
    (y) => y.options(START),
    run("start", async (a) => {
      const { start } = await import("./commands/start.js");
      await start(valuesOf("start", a));
    }),
  )
  .command(
    "engines",
    "add engines to a running cluster, with its launchers (the controller supervises and stops them)",
    (y) => y.options(ENGINES),
    run("engines", async (a) => {
      const { addEngines } = await import("./commands/engines.js");
      await addEngines({
        ...valuesOf("engines", a),
        n: a.n,
        timeout: a.timeout,
        json: a.json,
        enginesGiven: process.argv.some((x) => x === "--engines" || x.startsWith("--engines=")),
      });
    }),
  )
  .command(
    "stop",
    "stop a cluster: its engines and controller, every process by pid",
    (y) => y.options(STOP),
    run("stop", async (a) => {
      const { stop } = await import("./commands/stop.js");
      await stop({ ...valuesOf("stop", a), all: a.all, grace: a.grace });
    }),
  )
  .command(
    "list",
    "list clusters (running or stale) under $PTCLUSTER_DIR",
    (y) => y.options(LIST),
    run("list", async (a) => {
      const { list } = await import("./commands/list.js");
      list({ json: a.json });
    }),
  )
  .command(
    "status",
    "show a running cluster's engines: id, pid, host, state, tasks done",
    (y) => y.options(STATUS),
    run("status", async (a) => {
      const { status } = await import("./commands/status.js");
      await status({ ...valuesOf("status", a), json: a.json });
    }),
  )
  .command(
    "abort [tasks..]",
    "cancel tasks of any client, queued or running: by task id (ar.msgIds), on an engine (--engine ID), or --all",
    (y) =>
      y
        .options(ABORT)
        .positional("tasks", { type: "string", array: true, describe: "task ids, <client id>:<n> (ar.msgIds)" }),
    run("abort", async (a) => {
      const { abort } = await import("./commands/abort.js");
      await abort({
        ...valuesOf("abort", a),
        tasks: (a.tasks ?? []).map(String),
        engines: a.engine,
        all: a.all,
        json: a.json,
      });
    }),
  )
  .command(
    "hub",
    "run only the controller, in the foreground",
    (y) => y.options(HUB),
    run("hub", async (a) => {
      const { hub } = await import("./commands/hub.js");
      await hub(valuesOf("hub", a));
    }),
  )
  .command(
    "engine",
    "run one engine in the foreground, registering with a controller",
    (y) => y.options(ENGINE),
    run("engine", async (a) => {
      const { engine } = await import("./commands/engine.js");
      await engine({
        ...valuesOf("engine", a),
        file: a.file,
        url: a.url,
        key: a.key,
        id: a.id,
        idBase: a["id-base"],
        launchTag: a["launch-tag"],
        exitOnStdinClose: a["exit-on-stdin-close"],
        orphanTimeout: a["orphan-timeout"],
      });
    }),
  )
  .command(
    "repl",
    "a Node REPL with `rc` connected to the cluster",
    (y) => y.options(REPL),
    run("repl", async (a) => {
      const { startRepl } = await import("./commands/repl.js");
      await startRepl(valuesOf("repl", a));
    }),
  )
  .demandCommand(1, "Name a command: start, stop, list, status, abort, engines, repl, hub or engine.")
  .strict()
  .help()
  .fail((msg, err, y) => {
    // yargs wraps what an option's check threw (a UsageError) in a YError with the same message.
    if (err && !(err instanceof UsageError) && err.name !== "YError") throw err;
    if (!commandWord) {
      // No command at all: the overview is the useful answer.
      process.stderr.write(`ptcluster: ${msg ?? err?.message}\n\n`);
      y.showHelp();
    } else {
      reportUsage(commandWord, err?.message ?? msg.replace(/^Unknown arguments?: /, "unexpected argument "));
    }
    process.exit(2);
  })
  .parseAsync();
