import type { Options } from "yargs";
import { MACHINE_RULE } from "./util/machine.js";
import { numberOption } from "./util/numbers.js";
import type { Grammar } from "./util/usage.js";

// The options of every command, as tables: yargs registers them and `unknownWord` suggests the
// closest one when a flag is mistyped (yargs' own check can only list the unknown names).

const SCHEMES = ["leastload", "lru", "random", "weighted"] as const;

const profile = {
  profile: { type: "string", default: process.env["PTCLUSTER_PROFILE"] ?? "default", describe: "profile (a folder under $PTCLUSTER_DIR, default ~/.ptcluster)" },
  "cluster-id": { type: "string", default: "", describe: "cluster id, to run several clusters under one profile" },
} as const satisfies Record<string, Options>;

/** Where engines start, for `start` and `engines`. */
const launcher = {
  engines: { type: "string", default: "local", describe: "launcher: local, ssh, mpi or slurm" },
  hosts: { type: "string", describe: "ssh: hosts and engines per host, as b:4,c:4 (user@host works)" },
  "ssh-command": { type: "string", describe: "ssh: the ssh program (default ssh)" },
  "ssh-options": { type: "string", describe: "ssh: extra ssh arguments, as --ssh-options=\"-i ~/.ssh/cluster -p 2222\" (with =)" },
  "remote-command": { type: "string", describe: "ssh, slurm: how to run ptcluster where engines run, as \"npx ptcluster\" (default: this node and ptcluster, same absolute path)" },
  mpiexec: { type: "string", describe: "mpi: the mpiexec program (default mpiexec)" },
  "mpi-args": { type: "string", describe: "mpi: extra mpiexec arguments, as --mpi-args=\"--hostfile hosts --oversubscribe\" (with =)" },
  "slurm-partition": { type: "string", describe: "slurm: partition" },
  "slurm-time": { type: "string", describe: "slurm: time limit, as 01:00:00" },
  "slurm-account": { type: "string", describe: "slurm: account to charge" },
  "slurm-args": { type: "string", describe: "slurm: extra sbatch arguments, as --slurm-args=\"--qos=debug --mem=4G\" (with =)" },
} as const satisfies Record<string, Options>;

const port = (flag: string, describe: string) => numberOption({ flag, what: "a port number", min: 0, max: 65_535, example: 47011, default: 0, describe });

/** Fixed controller ports, for `start` and `hub`. */
const ports = {
  "engine-port": port("--engine-port", "fixed port engines connect to (for firewalls; default any free port)"),
  "client-port": port("--client-port", "fixed port clients connect to (default any free port)"),
  "notify-port": port("--notify-port", "fixed port of client notifications (default any free port)"),
};

const heartbeat = numberOption({ flag: "--heartbeat", what: "a whole number of ms", min: 10, default: 500, describe: "heartbeat period in ms" });
const maxMemory = (describe: string) => numberOption({ flag: "--max-memory", what: "a whole number of MB", min: 16, example: 512, describe });
const maxMessageMb = (describe: string) => numberOption({ flag: "--max-message-mb", what: "a number of MiB", min: 0, above: true, max: 4096, decimal: true, default: 1024, describe });

export const START = {
  ...profile, ...launcher, ...ports,
  n: { alias: "engines-count", ...numberOption({ flag: "-n", what: "a whole number of engines", min: 0, example: 4, describe: `number of engines (default: available cores; with --hosts, their counts). ${MACHINE_RULE}` }) },
  force: { type: "boolean", default: false, describe: "start more local engines than the machine-size rule of -n allows" },
  ip: { type: "string", default: "127.0.0.1", describe: "interface the controller binds (default loopback only)" },
  location: { type: "string", describe: "address peers should connect to, if not --ip (NAT, multi-homed hosts)" },
  concurrency: numberOption({ flag: "--concurrency", what: "a whole number of tasks", min: 1, default: 1, describe: "tasks each engine runs at once (1 for CPU-bound work, more for async IO)" }),
  scheme: { choices: SCHEMES, default: "leastload" as const, describe: "how load-balanced tasks pick an engine" },
  restart: { type: "boolean", default: true, describe: "replace engines that die (they register with new ids); --no-restart to turn off" },
  "max-memory": maxMemory("heap limit of each engine's executor in MB: a task that exceeds it fails, the engine lives on"),
  "max-message-mb": maxMessageMb("largest message (task data, result, push) in MiB; larger ones are refused before sending"),
  "client-timeout": numberOption({ flag: "--client-timeout", what: "a whole number of ms", min: 1, default: 30_000, describe: "ms a client may be silent before its queued tasks are cancelled" }),
  "result-ttl": numberOption({ flag: "--result-ttl", what: "a whole number of ms", min: 0, default: 600_000, describe: "ms results of a client that went away are kept for rc.getResult" }),
  curve: { type: "boolean", default: false, describe: "encrypt every connection with CurveZMQ; only allowed public keys may connect (keys in the profile's security/)" },
  encryption: { type: "boolean", describe: "--no-encryption: accept a non-loopback --ip without --curve (printed loudly)" },
  foreground: { type: "boolean", default: false, describe: "stay attached: Ctrl-C stops the cluster" },
  json: { type: "boolean", default: false, describe: "print the result as one JSON line" },
  timeout: numberOption({
    flag: "--timeout", what: "a whole number of ms", min: 1, default: 30_000,
    describe: "ms `start` waits for engines to register; then engines still starting are stopped, and the cluster keeps running with those that registered (exit code 1)",
  }),
  heartbeat,
  "ipc-ready": { type: "boolean", default: false, hidden: true },
  // When the `start` the user ran ends its wait (ms since the epoch), passed to the daemon it spawns: --timeout counts from the user's command.
  deadline: { hidden: true, ...numberOption({ flag: "--deadline", what: "a time in ms since 1970", min: 0, describe: "" }) },
} as const satisfies Record<string, Options>;

export const ENGINES = {
  ...profile, ...launcher,
  n: { demandOption: true, ...numberOption({ flag: "-n", what: "a whole number of engines", min: 1, example: 2, describe: "number of engines to add" }) },
  timeout: numberOption({ flag: "--timeout", what: "a whole number of ms", min: 1, default: 60_000, describe: "ms to wait for them to register" }),
  json: { type: "boolean", default: false, describe: "print the result as one JSON line" },
} as const satisfies Record<string, Options>;

export const STOP = {
  ...profile,
  all: { type: "boolean", default: false, describe: "stop every cluster under $PTCLUSTER_DIR" },
  grace: numberOption({ flag: "--grace", what: "a whole number of ms", min: 0, default: 1_000, describe: "ms to wait before SIGTERM, then SIGKILL" }),
} as const satisfies Record<string, Options>;

export const LIST = { json: { type: "boolean", default: false } } as const satisfies Record<string, Options>;

export const STATUS = { ...profile, json: { type: "boolean", default: false } } as const satisfies Record<string, Options>;

export const HUB = {
  ...profile, ...ports,
  ip: { type: "string", default: "127.0.0.1", describe: "interface to bind (default loopback only)" },
  location: { type: "string", describe: "address written into connection files for peers" },
  heartbeat,
  scheme: { choices: SCHEMES, default: "leastload" as const, describe: "how load-balanced tasks pick an engine" },
  "max-message-mb": maxMessageMb("largest message in MiB"),
  curve: { type: "boolean", default: false, describe: "encrypt every connection with CurveZMQ; only allowed public keys may connect" },
  encryption: { type: "boolean", describe: "--no-encryption: accept a non-loopback --ip without --curve (printed loudly)" },
} as const satisfies Record<string, Options>;

export const ENGINE = {
  ...profile,
  file: { type: "string", describe: "engine connection file (default: the profile's security/engine.json); - reads it from standard input" },
  url: { type: "string", describe: "controller engine endpoint, tcp://HOST:PORT (with --key)" },
  key: { type: "string", describe: "cluster key, 64 hex digits (with --url)" },
  concurrency: numberOption({ flag: "--concurrency", what: "a whole number of tasks", min: 1, default: 1, describe: "tasks this engine runs at once" }),
  id: numberOption({ flag: "--id", what: "an engine id", min: 0, example: 3, describe: "ask for this engine id (honoured when free)" }),
  "id-base": numberOption({ flag: "--id-base", what: "an engine id", min: 0, example: 8, describe: "under mpiexec, ask for id BASE + MPI rank (default 0: ids follow ranks)" }),
  "launch-tag": { type: "string", hidden: true },
  "exit-on-stdin-close": { type: "boolean", default: false, hidden: true },
  "orphan-timeout": numberOption({ flag: "--orphan-timeout", what: "a whole number of ms", min: 1, default: 30_000, describe: "exit when the controller has been silent this many ms" }),
  "max-memory": maxMemory("heap limit of the executor in MB"),
} as const satisfies Record<string, Options>;

export const REPL = { ...profile } as const satisfies Record<string, Options>;

const TABLES: Record<string, Record<string, Options>> = { start: START, engines: ENGINES, stop: STOP, list: LIST, status: STATUS, hub: HUB, engine: ENGINE, repl: REPL };

/** Every command and the flags it takes, for suggestions on a typo. */
export const GRAMMAR: Grammar = {
  commands: Object.fromEntries(Object.entries(TABLES).map(([cmd, table]) => {
    const names = Object.entries(table).flatMap(([k, o]) => [k, ...(o.alias === undefined ? [] : [o.alias].flat())]);
    return [cmd, {
      long: names.filter((x) => x.length > 1),
      short: names.filter((x) => x.length === 1),
      booleans: Object.entries(table).filter(([, o]) => o.type === "boolean").map(([k]) => k),
      hidden: Object.entries(table).filter(([, o]) => o.hidden).map(([k]) => k),
    }];
  })),
};
