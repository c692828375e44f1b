import { InvalidOptionError } from "../errors.js";
import type { SchedulerScheme } from "../messages.js";
import {
  checkValue,
  describeValue,
  type ApiOptionsOf,
  type Command,
  type OptionSpec,
  type ValuesFor,
} from "./option-spec.js";

// The one table of the cluster's options: the flags of `ptcluster start` (and of `hub`, `engines`,
// `engine` where they share them), their checks and `--help` lines, the options `startCluster()`
// takes (`api`), and the values the controller is started with. The command line derives its
// yargs options from it (packages/cli/src/options.ts), `startCluster()` its options type and
// checks; the name of each entry is its camelCase name, its flag the kebab-case of that name.

const ALL: readonly Command[] = ["start", "hub", "engines", "engine", "stop", "status", "repl", "abort"];
const START_AND_ENGINES = ["start", "engines"] as const;
const START_AND_HUB = ["start", "hub"] as const;
const SCHEMES: readonly SchedulerScheme[] = ["leastload", "lru", "random", "weighted"];
const port = (describe: string) =>
  ({
    kind: "number",
    what: "a port number",
    min: 0,
    max: 65_535,
    example: 47011,
    default: 0,
    describe,
    commands: START_AND_HUB,
  }) as const;

export const CLUSTER_OPTIONS = {
  profile: {
    kind: "string",
    default: process.env["PTCLUSTER_PROFILE"] ?? "default",
    describe: "profile (a folder under $PTCLUSTER_DIR, default ~/.ptcluster)",
    commands: ALL,
    api: true,
  },
  clusterId: {
    kind: "string",
    default: "",
    describe: "cluster id, to run several clusters under one profile",
    commands: ALL,
    api: true,
  },

  // The engines `start` launches.
  n: {
    kind: "number",
    what: "a whole number of engines",
    min: 0,
    example: 4,
    alias: "engines-count",
    commands: ["start"],
    api: true,
    describe: "number of engines (default: available cores; with --hosts, their counts).",
  },
  force: {
    kind: "boolean",
    default: false,
    describe: "start more local engines than the machine-size rule of -n allows",
    commands: ["start"],
    api: true,
  },
  concurrency: {
    kind: "number",
    what: "a whole number of tasks",
    min: 1,
    default: 1,
    commands: ["start", "engine"],
    api: true,
    describe: "tasks each engine runs at once (1 for CPU-bound work, more for async IO)",
    describeFor: { engine: "tasks this engine runs at once" },
  },
  restart: {
    kind: "boolean",
    default: true,
    describe: "replace engines that die (they register with new ids); --no-restart to turn off",
    commands: ["start"],
    api: true,
  },
  maxMemory: {
    kind: "number",
    what: "a whole number of MB",
    min: 16,
    example: 512,
    commands: ["start", "engine"],
    api: true,
    describe:
      "memory limit of each engine's executor in MB, heap and off-heap (Buffers): a task over it fails with ResourceLimitError, the engine lives on (default: 3/4 of the machine's memory shared among the -n local engines; per core for other launchers)",
    describeFor: {
      engine: "memory limit of the executor in MB, heap and off-heap (default: 3/4 of the machine's memory per core)",
    },
  },

  peerIp: {
    kind: "string",
    commands: ["start", "engine", "engines"],
    describe:
      "address of each launched engine's engine.comm peer endpoint, which other engines dial directly: one address, so for engines of one host (default: the address each reaches the controller from; peers that cannot reach it go through the controller)",
    describeFor: {
      engine:
        "address of this engine's engine.comm peer endpoint, which other engines dial directly (default: the address it reaches the controller from; peers that cannot reach it go through the controller)",
      engines:
        "address of the added engines' engine.comm peer endpoints: one address, so for engines of one host (default: the address each reaches the controller from)",
    },
  },

  // Where engines start.
  engines: {
    kind: "string",
    default: "local",
    describe: "launcher: local, ssh, mpi or slurm",
    commands: START_AND_ENGINES,
  },
  hosts: {
    kind: "string",
    describe: "ssh: hosts and engines per host, as b:4,c:4 (user@host works)",
    commands: START_AND_ENGINES,
  },
  sshCommand: { kind: "string", describe: "ssh: the ssh program (default ssh)", commands: START_AND_ENGINES },
  sshOptions: {
    kind: "string",
    describe: 'ssh: extra ssh arguments, as --ssh-options="-i ~/.ssh/cluster -p 2222" (with =)',
    commands: START_AND_ENGINES,
  },
  remoteCommand: {
    kind: "string",
    describe:
      'ssh, slurm: how to run ptcluster where engines run, as "npx ptcluster" (default: this node and ptcluster, same absolute path)',
    commands: START_AND_ENGINES,
  },
  mpiexec: { kind: "string", describe: "mpi: the mpiexec program (default mpiexec)", commands: START_AND_ENGINES },
  mpiArgs: {
    kind: "string",
    describe: 'mpi: extra mpiexec arguments, as --mpi-args="--hostfile hosts --oversubscribe" (with =)',
    commands: START_AND_ENGINES,
  },
  slurmPartition: { kind: "string", describe: "slurm: partition", commands: START_AND_ENGINES },
  slurmTime: { kind: "string", describe: "slurm: time limit, as 01:00:00", commands: START_AND_ENGINES },
  slurmAccount: { kind: "string", describe: "slurm: account to charge", commands: START_AND_ENGINES },
  slurmArgs: {
    kind: "string",
    describe: 'slurm: extra sbatch arguments, as --slurm-args="--qos=debug --mem=4G" (with =)',
    commands: START_AND_ENGINES,
  },

  // The controller: where it listens and how it treats engines and clients.
  enginePort: port("fixed port engines connect to (for firewalls; default any free port)"),
  clientPort: port("fixed port clients connect to (default any free port)"),
  notifyPort: port("fixed port of client notifications (default any free port)"),
  ip: {
    kind: "string",
    default: "127.0.0.1",
    describe: "interface the controller binds (default loopback only)",
    commands: START_AND_HUB,
  },
  location: {
    kind: "string",
    describe: "address peers should connect to, if not --ip (NAT, multi-homed hosts); written into connection files",
    commands: START_AND_HUB,
  },
  heartbeat: {
    kind: "number",
    what: "a whole number of ms",
    min: 10,
    default: 500,
    describe: "heartbeat period in ms",
    commands: START_AND_HUB,
  },
  scheme: {
    kind: "choice",
    choices: SCHEMES,
    default: "leastload",
    describe: "how load-balanced tasks pick an engine",
    commands: START_AND_HUB,
    api: true,
  },
  maxMessageMb: {
    kind: "number",
    what: "a number of MiB",
    min: 0,
    above: true,
    max: 4096,
    decimal: true,
    default: 1024,
    commands: START_AND_HUB,
    api: true,
    describe: "largest message (task data, result, push) in MiB; larger ones are refused before sending",
  },
  maxSharedMb: {
    kind: "number",
    what: "a number of MiB",
    min: 0,
    above: true,
    decimal: true,
    default: 1024,
    commands: START_AND_HUB,
    api: true,
    describe:
      "most memory shared state (rc.shared) may hold on the controller, in MiB; past it a store fails with SharedLimitError",
  },
  shmThresholdKb: {
    kind: "number",
    what: "a whole number of KiB",
    min: 0,
    default: 1024,
    commands: START_AND_HUB,
    api: true,
    describe:
      "binary values of this many KiB or more go between a client and an engine of the controller's host through a private shared-memory file (/dev/shm), not the network; 0: never",
  },
  clientTimeout: {
    kind: "number",
    what: "a whole number of ms",
    min: 1,
    default: 30_000,
    describe: "ms a client may be silent before its tasks, queued and running, are cancelled",
    commands: START_AND_HUB,
  },
  resultTtl: {
    kind: "number",
    what: "a whole number of ms",
    min: 0,
    default: 600_000,
    describe: "ms results of a client that went away are kept for rc.getResult",
    commands: START_AND_HUB,
  },
  curve: {
    kind: "boolean",
    default: false,
    describe:
      "encrypt every connection with CurveZMQ; only allowed public keys may connect (keys in the profile's security/)",
    commands: START_AND_HUB,
  },
  encryption: {
    kind: "boolean",
    describe: "--no-encryption: accept a non-loopback --ip without --curve (printed loudly)",
    commands: START_AND_HUB,
  },

  // `start` itself.
  foreground: {
    kind: "boolean",
    default: false,
    describe: "stay attached: Ctrl-C stops the cluster",
    commands: ["start"],
  },
  json: { kind: "boolean", default: false, describe: "print the result as one JSON line", commands: ["start"] },
  timeout: {
    kind: "number",
    what: "a whole number of ms",
    min: 1,
    default: 30_000,
    commands: ["start"],
    api: true,
    describe:
      "ms `start` waits for engines to register; then engines still starting are stopped, and the cluster keeps running with those that registered (exit code 1)",
  },
  // `startCluster()` only (hidden on the command line, whose controller always outlives `start`):
  // whether the cluster outlives the process that started it. The daemon reads it to know whether
  // its stdin is a pipe from its owner, whose end means the owner is gone.
  detached: {
    kind: "boolean",
    default: false,
    describe:
      "startCluster(): keep the cluster running after this process ends (stop it with cluster.stop() or `ptcluster stop`)",
    hidden: true,
    commands: ["start"],
    api: true,
  },
  // The hand-off to the daemon `start` spawns: it reports over IPC, and --timeout counts from the
  // user's command (`deadline`, ms since the epoch), not from the daemon's start.
  ipcReady: { kind: "boolean", default: false, describe: "", hidden: true, commands: ["start"] },
  deadline: {
    kind: "number",
    what: "a time in ms since 1970",
    min: 0,
    describe: "",
    hidden: true,
    commands: ["start"],
  },
} as const satisfies Record<string, OptionSpec>;

export type ClusterOptionName = keyof typeof CLUSTER_OPTIONS;

/** What `ptcluster start` and `startCluster()` resolve to: every option of `start`, checked, defaults filled in. */
export type StartValues = ValuesFor<typeof CLUSTER_OPTIONS, "start">;
/** The values of `ptcluster hub`: the controller's options (every `start` has them too). */
export type HubValues = ValuesFor<typeof CLUSTER_OPTIONS, "hub">;
/** The launchers' settings among the options (`rc.addEngines()` takes them by these names too). */
export const LAUNCHER_OPTIONS = [
  "hosts",
  "sshCommand",
  "sshOptions",
  "remoteCommand",
  "mpiexec",
  "mpiArgs",
  "slurmPartition",
  "slurmTime",
  "slurmAccount",
  "slurmArgs",
  "peerIp",
] as const satisfies readonly ClusterOptionName[];
/** The launchers' settings, as `start` and `engines` take them. */
export type LauncherValues = Pick<StartValues, (typeof LAUNCHER_OPTIONS)[number]>;
/** The options of the table that `startCluster()` takes. */
export type ClusterApiOptions = ApiOptionsOf<typeof CLUSTER_OPTIONS>;

/** The names of the options a command takes, in table order. */
export function optionsOf(command: Command): ClusterOptionName[] {
  return (Object.keys(CLUSTER_OPTIONS) as ClusterOptionName[]).filter((k) =>
    (CLUSTER_OPTIONS[k].commands as readonly Command[]).includes(command),
  );
}

/** The names `startCluster()` takes, in table order. */
export const API_OPTIONS = (Object.keys(CLUSTER_OPTIONS) as ClusterOptionName[]).filter(
  (k) => (CLUSTER_OPTIONS[k] as OptionSpec).api === true,
);

/**
 * The values `start` runs with, from options given to the API: each checked against the table
 * (the message names it and quotes the value), the rest at their defaults.
 */
export function startValuesFrom(given: object, what = "startCluster"): StartValues {
  if (typeof given !== "object" || given === null)
    throw new InvalidOptionError(`Expected ${what} options to be an object, got ${describeValue(given)}`);
  const values: Record<string, unknown> = {};
  for (const k of optionsOf("start")) values[k] = (CLUSTER_OPTIONS[k] as OptionSpec).default;
  for (const [k, v] of Object.entries(given)) {
    if (!(API_OPTIONS as string[]).includes(k))
      throw new InvalidOptionError(`Unknown ${what} option \`${k}\`. Known options: ${API_OPTIONS.join(", ")}.`);
    if (v !== undefined) values[k] = checkValue(k, CLUSTER_OPTIONS[k as ClusterOptionName], v);
  }
  return values as StartValues;
}
