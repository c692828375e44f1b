#!/usr/bin/env node
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { reportFailure } from "./util/cli-error.js";

const profileOpts = (y: Argv) =>
  y
    .option("profile", { type: "string", default: process.env["PTCLUSTER_PROFILE"] ?? "default", describe: "profile (a folder under $PTCLUSTER_DIR, default ~/.ptcluster)" })
    .option("cluster-id", { type: "string", default: "", describe: "cluster id, to run several clusters under one profile" });

/** Where engines start, for `start` and `engines`. */
const launcherOpts = <T,>(y: Argv<T>) =>
  y
    .option("engines", { type: "string", default: "local", describe: "launcher: local, ssh, mpi or slurm" })
    .option("hosts", { type: "string", describe: "ssh: hosts and engines per host, as b:4,c:4 (user@host works)" })
    .option("ssh-command", { type: "string", describe: "ssh: the ssh program (default ssh)" })
    .option("ssh-options", { type: "string", describe: "ssh: extra ssh arguments, as --ssh-options=\"-i ~/.ssh/cluster -p 2222\" (with =)" })
    .option("remote-command", { type: "string", describe: "ssh, slurm: how to run ptcluster where engines run, as \"npx ptcluster\" (default: this node and ptcluster, same absolute path)" })
    .option("mpiexec", { type: "string", describe: "mpi: the mpiexec program (default mpiexec)" })
    .option("mpi-args", { type: "string", describe: "mpi: extra mpiexec arguments, as --mpi-args=\"--hostfile hosts --oversubscribe\" (with =)" })
    .option("slurm-partition", { type: "string", describe: "slurm: partition" })
    .option("slurm-time", { type: "string", describe: "slurm: time limit, as 01:00:00" })
    .option("slurm-account", { type: "string", describe: "slurm: account to charge" })
    .option("slurm-args", { type: "string", describe: "slurm: extra sbatch arguments, as --slurm-args=\"--qos=debug --mem=4G\" (with =)" });

/** Fixed controller ports, for `start` and `hub`. */
const portOpts = <T,>(y: Argv<T>) =>
  y
    .option("engine-port", { type: "number", default: 0, describe: "fixed port engines connect to (for firewalls; default any free port)" })
    .option("client-port", { type: "number", default: 0, describe: "fixed port clients connect to (default any free port)" })
    .option("notify-port", { type: "number", default: 0, describe: "fixed port of client notifications (default any free port)" });

/** The launcher settings of parsed `start` / `engines` arguments. */
function launcherSettings(a: Record<string, unknown>) {
  const s = (k: string) => (a[k] === undefined ? undefined : String(a[k]));
  return {
    hosts: s("hosts"), sshCommand: s("ssh-command"), sshOptions: s("ssh-options"), remoteCommand: s("remote-command"), mpiexec: s("mpiexec"), mpiArgs: s("mpi-args"),
    slurmPartition: s("slurm-partition"), slurmTime: s("slurm-time"), slurmAccount: s("slurm-account"), slurmArgs: s("slurm-args"),
  };
}

function run<T>(command: string, f: (argv: T) => Promise<void> | void) {
  return async (argv: T) => {
    try {
      await f(argv);
    } catch (err) {
      reportFailure(command, err);
    }
  };
}

await yargs(hideBin(process.argv))
  .scriptName("ptcluster")
  .usage("$0 <command> [options]\n\nRun Node.js and TypeScript code on a cluster of engines, ipyparallel-style.")
  .command(
    "start",
    "start a controller and engines; returns once every engine has registered",
    (y) =>
      portOpts(launcherOpts(profileOpts(y)))
        .option("n", { alias: "engines-count", type: "number", describe: "number of engines (default: available cores; with --hosts, their counts)" })
        .option("ip", { type: "string", default: "127.0.0.1", describe: "interface the controller binds (default loopback only)" })
        .option("location", { type: "string", describe: "address peers should connect to, if not --ip (NAT, multi-homed hosts)" })
        .option("concurrency", { type: "number", default: 1, describe: "tasks each engine runs at once (1 for CPU-bound work, more for async IO)" })
        .option("scheme", { choices: ["leastload", "lru", "random", "weighted"] as const, default: "leastload" as const, describe: "how load-balanced tasks pick an engine" })
        .option("restart", { type: "boolean", default: true, describe: "replace engines that die (they register with new ids); --no-restart to turn off" })
        .option("max-memory", { type: "number", describe: "heap limit of each engine's executor in MB: a task that exceeds it fails, the engine lives on" })
        .option("max-message-mb", { type: "number", default: 1024, describe: "largest message (task data, result, push) in MiB; larger ones are refused before sending" })
        .option("client-timeout", { type: "number", default: 30_000, describe: "ms a client may be silent before its queued tasks are cancelled" })
        .option("result-ttl", { type: "number", default: 600_000, describe: "ms results of a client that went away are kept for rc.getResult" })
        .option("curve", { type: "boolean", default: false, describe: "encrypt every connection with CurveZMQ; only allowed public keys may connect (keys in the profile's security/)" })
        .option("encryption", { type: "boolean", describe: "--no-encryption: accept a non-loopback --ip without --curve (printed loudly)" })
        .option("foreground", { type: "boolean", default: false, describe: "stay attached: Ctrl-C stops the cluster" })
        .option("json", { type: "boolean", default: false, describe: "print the result as one JSON line" })
        .option("timeout", { type: "number", default: 30_000, describe: "ms to wait for every engine to register" })
        .option("heartbeat", { type: "number", default: 500, describe: "heartbeat period in ms" })
        .option("ipc-ready", { type: "boolean", default: false, hidden: true }),
    run("start", async (a) => {
      const { start } = await import("./commands/start.js");
      await start({
        n: a.n, engines: a.engines, launcher: launcherSettings(a), profile: a.profile, clusterId: a["cluster-id"], ip: a.ip, location: a.location,
        concurrency: a.concurrency, foreground: a.foreground, json: a.json, timeout: a.timeout, heartbeatMs: a.heartbeat, ipcReady: a["ipc-ready"], scheme: a.scheme, restart: a.restart, maxMemory: a["max-memory"], maxMessageMb: a["max-message-mb"], clientTimeoutMs: a["client-timeout"], resultTtlMs: a["result-ttl"], curve: a.curve, encryption: a.encryption,
        ports: { engine: a["engine-port"], client: a["client-port"], notify: a["notify-port"] },
      });
    }),
  )
  .command(
    "engines",
    "add engines to a running cluster, with its launchers (the controller supervises and stops them)",
    (y) =>
      launcherOpts(profileOpts(y))
        .option("n", { type: "number", demandOption: true, describe: "number of engines to add" })
        .option("timeout", { type: "number", default: 60_000, describe: "ms to wait for them to register" })
        .option("json", { type: "boolean", default: false, describe: "print the result as one JSON line" }),
    run("engines", async (a) => {
      const { addEngines } = await import("./commands/engines.js");
      await addEngines({ profile: a.profile, clusterId: a["cluster-id"], n: a.n, engines: a.engines, launcher: launcherSettings(a), timeout: a.timeout, json: a.json, enginesGiven: process.argv.some((x) => x === "--engines" || x.startsWith("--engines=")) });
    }),
  )
  .command(
    "stop",
    "stop a cluster: its engines and controller, every process by pid",
    (y) => profileOpts(y).option("all", { type: "boolean", default: false, describe: "stop every cluster under $PTCLUSTER_DIR" }).option("grace", { type: "number", default: 1_000, describe: "ms to wait before SIGTERM, then SIGKILL" }),
    run("stop", async (a) => {
      const { stop } = await import("./commands/stop.js");
      await stop({ profile: a.profile, clusterId: a["cluster-id"], all: a.all, grace: a.grace });
    }),
  )
  .command(
    "list",
    "list clusters (running or stale) under $PTCLUSTER_DIR",
    (y) => y.option("json", { type: "boolean", default: false }),
    run("list", async (a) => {
      const { list } = await import("./commands/list.js");
      list({ json: a.json });
    }),
  )
  .command(
    "status",
    "show a running cluster's engines: id, pid, host, state, tasks done",
    (y) => profileOpts(y).option("json", { type: "boolean", default: false }),
    run("status", async (a) => {
      const { status } = await import("./commands/status.js");
      await status({ profile: a.profile, clusterId: a["cluster-id"], json: a.json });
    }),
  )
  .command(
    "hub",
    "run only the controller, in the foreground",
    (y) =>
      portOpts(profileOpts(y))
        .option("ip", { type: "string", default: "127.0.0.1", describe: "interface to bind (default loopback only)" })
        .option("location", { type: "string", describe: "address written into connection files for peers" })
        .option("heartbeat", { type: "number", default: 500, describe: "heartbeat period in ms" })
        .option("scheme", { choices: ["leastload", "lru", "random", "weighted"] as const, default: "leastload" as const, describe: "how load-balanced tasks pick an engine" })
        .option("max-message-mb", { type: "number", default: 1024, describe: "largest message in MiB" })
        .option("curve", { type: "boolean", default: false, describe: "encrypt every connection with CurveZMQ; only allowed public keys may connect" })
        .option("encryption", { type: "boolean", describe: "--no-encryption: accept a non-loopback --ip without --curve (printed loudly)" }),
    run("hub", async (a) => {
      const { hub } = await import("./commands/hub.js");
      await hub({ profile: a.profile, clusterId: a["cluster-id"], ip: a.ip, location: a.location, heartbeatMs: a.heartbeat, scheme: a.scheme, maxMessageMb: a["max-message-mb"], curve: a.curve, encryption: a.encryption, ports: { engine: a["engine-port"], client: a["client-port"], notify: a["notify-port"] } });
    }),
  )
  .command(
    "engine",
    "run one engine in the foreground, registering with a controller",
    (y) =>
      profileOpts(y)
        .option("file", { type: "string", describe: "engine connection file (default: the profile's security/engine.json); - reads it from standard input" })
        .option("url", { type: "string", describe: "controller engine endpoint, tcp://HOST:PORT (with --key)" })
        .option("key", { type: "string", describe: "cluster key, 64 hex digits (with --url)" })
        .option("concurrency", { type: "number", default: 1, describe: "tasks this engine runs at once" })
        .option("id", { type: "number", describe: "ask for this engine id (honoured when free)" })
        .option("id-base", { type: "number", describe: "under mpiexec, ask for id BASE + MPI rank (default 0: ids follow ranks)" })
        .option("launch-tag", { type: "string", hidden: true })
        .option("exit-on-stdin-close", { type: "boolean", default: false, hidden: true })
        .option("orphan-timeout", { type: "number", default: 30_000, describe: "exit when the controller has been silent this many ms" })
        .option("max-memory", { type: "number", describe: "heap limit of the executor in MB" }),
    run("engine", async (a) => {
      const { engine } = await import("./commands/engine.js");
      await engine({ file: a.file, url: a.url, key: a.key, profile: a.profile, clusterId: a["cluster-id"], concurrency: a.concurrency, id: a.id, idBase: a["id-base"], launchTag: a["launch-tag"], exitOnStdinClose: a["exit-on-stdin-close"], orphanTimeout: a["orphan-timeout"], maxMemory: a["max-memory"] });
    }),
  )
  .command(
    "repl",
    "a Node REPL with `rc` connected to the cluster",
    (y) => profileOpts(y),
    run("repl", async (a) => {
      const { startRepl } = await import("./commands/repl.js");
      await startRepl({ profile: a.profile, clusterId: a["cluster-id"] });
    }),
  )
  .demandCommand(1, "Name a command: start, stop, list, status, engines, repl, hub or engine.")
  .strict()
  .help()
  .fail((msg, err, y) => {
    if (err) throw err;
    process.stderr.write(`ptcluster: ${msg}\n\n`);
    y.showHelp();
    process.exit(2);
  })
  .parseAsync();
