import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Hub } from "@ptcluster/hub";
import {
  ClusterStartError, InvalidOptionError, createLogger, ensureProfileDirs, newClusterKey, newCurveMaterial, pidAlive, profilePaths, readAllowedKeys,
  readClusterState, writeClusterState, type ClusterState, type ProfilePaths, type SchedulerScheme,
} from "@ptcluster/protocol";
import { createLauncher, type EngineGroup, type Launcher, type LauncherSettings } from "../launchers/index.js";
import { SshLauncher } from "../launchers/ssh.js";
import { binPath } from "../util/cli-error.js";
import { checkExposure } from "../util/exposure.js";
import { localEngineLimit } from "../util/machine.js";
import { mebibytes } from "../util/units.js";
import { UsageError } from "../util/usage.js";
import { endLaunches, shortfall, waitForRegistrations } from "./registrations.js";
import { tidyLogs } from "../util/log-files.js";

/** Options of `ptcluster start`; the same names as `startCluster()` takes. */
export interface StartOptions {
  /** engines to start (default: the launcher's: available cores locally, the hosts' counts for ssh) */
  n: number | undefined;
  /** allow more local engines than the machine-size rule (`localEngineLimit`) */
  force: boolean;
  /** launcher: local, ssh, mpi or slurm */
  engines: string;
  /** the launchers' settings (hosts, ssh options, mpiexec, slurm partition, …) */
  launcher: LauncherSettings;
  profile: string;
  clusterId: string;
  ip: string;
  location: string | undefined;
  concurrency: number;
  foreground: boolean;
  json: boolean;
  /** ms to wait for all engines to register */
  timeout: number;
  heartbeatMs: number;
  /** internal: report readiness over IPC to the `start` that spawned this daemon */
  ipcReady: boolean;
  /** internal: when the wait for engines ends (ms since the epoch; default `timeout` from now) */
  deadline?: number | undefined;
  /** load-balancing scheme */
  scheme: SchedulerScheme;
  /** replace engines that die (default true) */
  restart: boolean;
  /** heap limit of each engine's executor (MB) */
  maxMemory: number | undefined;
  /** largest message (MiB) */
  maxMessageMb: number;
  /** ms a client may be silent before its tasks are cancelled */
  clientTimeoutMs: number;
  /** ms results of a gone client are kept */
  resultTtlMs: number;
  /** CurveZMQ encryption with an allow-list */
  curve: boolean;
  /** fixed ports (0: any free one) */
  ports?: { engine: number; client: number; notify: number };
  /** false: `--no-encryption` given (a non-loopback bind without CURVE is accepted) */
  encryption: boolean | undefined;
}

export interface StartSummary {
  profile: string;
  clusterId: string;
  ids: number[];
  clientFile: string;
  engineFile: string;
  controllerPid: number;
  enginePids: number[];
}

export function defaultEngineCount(): number {
  return availableParallelism();
}

function assertNotRunning(paths: ProfilePaths): void {
  const st = readClusterState(paths.stateFile);
  if (st && pidAlive(st.hubPid)) {
    const id = paths.clusterId ? ` --cluster-id ${paths.clusterId}` : "";
    throw new ClusterStartError(
      `A cluster is already running for profile \`${paths.profile}\`${paths.clusterId ? ` (cluster id ${paths.clusterId})` : ""} (controller pid ${st.hubPid}). ` +
        `Stop it with \`ptcluster stop --profile ${paths.profile}${id}\`, or start another under a different --profile or --cluster-id.`,
    );
  }
}

/** `ptcluster start`: daemonised unless `--foreground`. */
export async function start(o: StartOptions): Promise<void> {
  // `--timeout` bounds the whole of `start`, from here (the daemon's boot counts).
  o.deadline ??= Date.now() + o.timeout;
  const paths = profilePaths(o.profile, o.clusterId);
  // Bad launcher settings fail here, before a daemon starts.
  const launcher = createLauncher(o.engines, launchContext(o, paths), o.launcher);
  if (o.n === undefined) {
    // A batch job's size is the user's choice, not this (login) node's core count.
    if (o.engines === "slurm") throw new InvalidOptionError("`--engines slurm` needs `-n`: how many engines (Slurm tasks) to run");
    o.n = launcher instanceof SshLauncher ? launcher.capacity : defaultEngineCount();
  }
  if (!Number.isInteger(o.n) || o.n < 0) throw new InvalidOptionError(`Expected \`-n\` to be a non-negative integer, got \`${o.n}\``);
  if (o.engines === "local" && !o.force) {
    const { limit, why } = localEngineLimit();
    if (o.n > limit) throw new UsageError(`-n ${o.n} is more engines than this machine runs well: at most ${limit} local engines (${why}); use a smaller -n, or --force`);
  }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new InvalidOptionError(`Expected \`--concurrency\` to be a positive integer, got \`${o.concurrency}\``);
  checkExposure(o.ip, o.curve, o.encryption);
  assertNotRunning(paths);
  ensureProfileDirs(paths);
  // Once per start: the daemon `start` spawns (--ipc-ready) comes here too, after its log exists.
  if (!o.ipcReady) tidyLogs(paths);
  if (o.foreground) return runController(o as StartOptions & { n: number }, paths);
  const { summary, shortfall } = await spawnDaemon(o, paths);
  if (shortfall === undefined || o.json) printSummary(summary, o.json);
  // Fewer engines than asked: the cluster runs (the message says so and how to stop it), but `start` did not do what it was asked.
  if (shortfall !== undefined) throw new ClusterStartError(shortfall);
}

/** How to name this cluster on the command line: ` --profile P --cluster-id C`, or "" for the default. */
function clusterFlags(profile: string, clusterId: string): string {
  return `${profile !== "default" ? ` --profile ${profile}` : ""}${clusterId ? ` --cluster-id ${clusterId}` : ""}`;
}

function printSummary(s: StartSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const flags = clusterFlags(s.profile, s.clusterId);
  process.stdout.write(
    `Cluster started: ${s.ids.length} engine${s.ids.length === 1 ? "" : "s"} [${s.ids.join(", ")}]\n` +
      `  profile     ${s.profile}${s.clusterId ? ` (cluster id ${s.clusterId})` : ""}\n` +
      `  connection  ${s.clientFile}\n` +
      `  controller  pid ${s.controllerPid}; engine pids ${s.enginePids.join(", ") || "none"}\n` +
      `  logs        ${profilePaths(s.profile, s.clusterId).logDir}\n` +
      `Connect with \`ptcluster repl${flags}\` or \`await connect(${s.profile !== "default" || s.clusterId ? JSON.stringify({ profile: s.profile, ...(s.clusterId ? { clusterId: s.clusterId } : {}) }) : ""})\`; stop with \`ptcluster stop${flags}\`.\n`,
  );
}

/** What the controller reports to the `start` that spawned it. */
type Report = { type: "ready"; summary: StartSummary; shortfall?: string } | { type: "failed"; message: string };

/**
 * Starts the controller as a detached process and returns once its engines registered, or
 * `--timeout` passed with some of them registered (`shortfall` says how many).
 */
async function spawnDaemon(o: StartOptions, paths: ProfilePaths): Promise<{ summary: StartSummary; shortfall?: string | undefined }> {
  const errFile = join(paths.logDir, `controller${paths.clusterId ? `-${paths.clusterId}` : ""}.stderr`);
  const fd = openSync(errFile, "w", 0o600);
  const args = [binPath(), "start", "--foreground", "--ipc-ready", "-n", String(o.n), "--profile", o.profile, "--ip", o.ip,
    "--concurrency", String(o.concurrency), "--timeout", String(o.timeout), "--deadline", String(o.deadline), "--heartbeat", String(o.heartbeatMs), "--scheme", o.scheme];
  if (!o.restart) args.push("--no-restart");
  if (o.force) args.push("--force");
  if (o.maxMemory !== undefined) args.push("--max-memory", String(o.maxMemory));
  args.push("--max-message-mb", String(o.maxMessageMb), "--client-timeout", String(o.clientTimeoutMs), "--result-ttl", String(o.resultTtlMs));
  if (o.curve) args.push("--curve");
  if (o.encryption === false) args.push("--no-encryption");
  if (o.clusterId) args.push("--cluster-id", o.clusterId);
  if (o.location) args.push("--location", o.location);
  args.push("--engines", o.engines, ...launcherFlags(o.launcher));
  if (o.ports) args.push("--engine-port", String(o.ports.engine), "--client-port", String(o.ports.client), "--notify-port", String(o.ports.notify));
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "ignore", fd, "ipc"] });
  closeSync(fd);
  const readErr = () => {
    try {
      return readFileSync(errFile, "utf8").trim();
    } catch {
      return "";
    }
  };
  let failed: ClusterStartError | undefined;
  return new Promise((resolve, reject) => {
    // The controller ends its own wait at --timeout; this is the net under it (a controller that hangs before it can tell).
    const net = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new ClusterStartError(`The controller did not report within ${o.timeout} ms (--timeout) and 10 s more; it was stopped.${readErr() ? `\n${readErr()}` : ""}`));
    }, (o.deadline ?? 0) - Date.now() + 10_000);
    child.on("message", (m: Report) => {
      if (m.type === "ready") {
        clearTimeout(net);
        child.removeAllListeners("exit");
        child.disconnect();
        child.unref();
        resolve({ summary: m.summary, shortfall: m.shortfall });
      } else if (m.type === "failed") {
        // The controller now stops what it started: answer once it has exited (no process left behind), within 5 s.
        failed = new ClusterStartError(m.message);
        clearTimeout(net);
        setTimeout(() => reject(failed), 5_000).unref();
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(net);
      if (failed) return reject(failed);
      const err = readErr();
      reject(new ClusterStartError(`The controller exited (${signal ?? `code ${code}`}) before the cluster was ready${err ? `:\n${err}` : "."}`));
    });
  });
}

/** The launchers' view of a cluster being started. */
function launchContext(o: StartOptions, paths: ProfilePaths) {
  return { profile: o.profile, clusterId: o.clusterId, engineFile: paths.engineFile, logDir: paths.logDir, ip: o.ip, concurrency: o.concurrency, maxMemoryMb: o.maxMemory };
}

const SETTING_FLAGS: Record<keyof LauncherSettings, string> = {
  hosts: "--hosts", sshCommand: "--ssh-command", sshOptions: "--ssh-options", remoteCommand: "--remote-command",
  mpiexec: "--mpiexec", mpiArgs: "--mpi-args", slurmPartition: "--slurm-partition", slurmTime: "--slurm-time",
  slurmAccount: "--slurm-account", slurmArgs: "--slurm-args",
};

/** The command-line flags for launcher settings (to pass them on to the daemon). */
function launcherFlags(l: LauncherSettings): string[] {
  const out: string[] = [];
  for (const [k, flag] of Object.entries(SETTING_FLAGS)) {
    const v = l[k as keyof LauncherSettings];
    if (v !== undefined && v !== "") out.push(`${flag}=${v}`);
  }
  return out;
}

/** Launcher settings from `rc.addEngines()` options: the known keys, as strings. */
function settingsFrom(options: Record<string, unknown>): LauncherSettings {
  const out: LauncherSettings = {};
  for (const k of Object.keys(SETTING_FLAGS) as Array<keyof LauncherSettings>) {
    const v = options[k];
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/** The controller process: hub in-process, engines launched and supervised here. */
async function runController(o: StartOptions & { n: number }, paths: ProfilePaths): Promise<void> {
  const logFile = join(paths.logDir, `hub${paths.clusterId ? `-${paths.clusterId}` : ""}.log`);
  const logger = createLogger({ name: "ptcluster", file: logFile, echo: !o.ipcReady });
  const report = (msg: Report) => {
    if (o.ipcReady && process.send) {
      process.send(msg, () => process.disconnect?.());
    } else if (msg.type === "ready") {
      printSummary(msg.summary, o.json);
      if (msg.shortfall) process.stderr.write(`ptcluster start: ${msg.shortfall}\n`);
    }
  };
  const ctx = launchContext(o, paths);
  const launchers = new Map<string, Launcher>();
  const launcherFor = (name: string, settings: LauncherSettings): Launcher => {
    // One launcher per name and settings: it remembers placement (ssh hosts) across launches.
    const key = `${name} ${JSON.stringify(settings)}`;
    let l = launchers.get(key);
    if (!l) launchers.set(key, (l = createLauncher(name, ctx, settings)));
    return l;
  };
  const mainLauncher = launcherFor(o.engines, o.launcher);
  const curve = o.curve ? { ...newCurveMaterial(), allowedKeys: readAllowedKeys(paths.allowedKeysFile) } : undefined;
  const hub: Hub = new Hub({
    profile: o.profile, clusterId: o.clusterId, ip: o.ip, key: newClusterKey(), ...(curve ? { curve } : {}), heartbeatMs: o.heartbeatMs, scheme: o.scheme,
    maxMessageBytes: mebibytes(o.maxMessageMb), clientTimeoutMs: o.clientTimeoutMs, resultTtlMs: o.resultTtlMs, logger, logFile, ...(o.location ? { location: o.location } : {}), ...(o.ports ? { ports: o.ports } : {}),
    launch: (req) => launchMore(req.n, req.launcher || o.engines, req.launcher ? settingsFrom(req.options) : { ...o.launcher, ...settingsFrom(req.options) }, Number(req.options["timeout"] ?? o.timeout)),
  });
  await hub.start();
  const state: ClusterState = { profile: o.profile, clusterId: o.clusterId, hubPid: process.pid, enginePids: [], startedAt: Date.now(), state: "starting", engines: o.n, jobs: [] };
  writeClusterState(paths.stateFile, state);
  const groups = new Set<EngineGroup>();
  /** Launches ended because their engines missed `--timeout`: not replaced, not counted as crashes. */
  const abandoned = new WeakSet<EngineGroup>();
  let stopping = false;

  const shutdown = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    state.state = "stopping";
    writeClusterState(paths.stateFile, state);
    await hub.stop(reason);
    // Engines were told to stop; launches that outlive them (ssh sessions, mpiexec, batch jobs) are ended.
    const deadline = Date.now() + 1_000;
    await Promise.all([...groups].map(async (g) => {
      const t = setTimeout(() => g.kill("SIGTERM"), Math.max(0, deadline - 500 - Date.now()));
      const k = setTimeout(() => g.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
      await g.exited;
      clearTimeout(t);
      clearTimeout(k);
    }));
    rmSync(paths.stateFile, { force: true });
    logger.flush?.();
    process.exit(code);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  void hub.stopped.then(() => shutdown("controller stopped"));

  let ready = false;
  /** Recent ends of launches whose engines never all registered: the sign of a crash loop. */
  const failedStarts: number[] = [];
  /** Engines registered per launch tag. */
  const registeredByTag = new Map<string, number>();
  hub.on("engine_up", (info) => {
    if (info.tag !== undefined) registeredByTag.set(info.tag, (registeredByTag.get(info.tag) ?? 0) + 1);
  });
  const recordState = () => {
    state.enginePids = [...groups].flatMap((g) => g.pids);
    state.jobs = [...groups].flatMap((g) => (g.job ? [g.job] : []));
    writeClusterState(paths.stateFile, state);
  };
  const supervise = (list: EngineGroup[]) => {
    for (const g of list) {
      groups.add(g);
      void g.exited.then((code) => {
        groups.delete(g);
        recordState();
        if (stopping) return;
        const how = typeof code === "string" ? code : `code ${code}`;
        hub.launchExited(g.tag, how);
        if (abandoned.has(g)) {
          registeredByTag.delete(g.tag);
          logger.info({ tag: g.tag, where: g.where, code }, "stopped engines that missed the start timeout");
          return;
        }
        logger.warn({ tag: g.tag, where: g.where, code }, "engine launch ended");
        // Replace it (its engines register with new ids), unless restarts are off, the launch never
        // worked (none of its engines registered: a failed start is reported, not retried), or
        // replacements keep dying early (a crash loop: a broken install, a bad NODE_OPTIONS).
        const now = Date.now();
        const registered = registeredByTag.get(g.tag) ?? 0;
        registeredByTag.delete(g.tag);
        if (registered < g.count) failedStarts.push(now);
        while (failedStarts.length && (failedStarts[0] as number) < now - 10_000) failedStarts.shift();
        if (registered === 0) {
          if (ready) logger.error({ where: g.where, code, output: g.output().slice(-2_000) }, "engines ended before registering; not restarting them");
        } else if (ready && o.restart && failedStarts.length < Math.max(3, o.n)) {
          g.relaunch({ idBase: hub.freshIdBase() }).then(supervise, (err: Error) => logger.error({ err, where: g.where }, "could not relaunch engines"));
        } else if (ready && o.restart) {
          logger.error({ failedStarts: failedStarts.length }, "replacement engines die before registering; not restarting them");
        }
      });
    }
    recordState();
  };

  /** Ends the launches that missed the timeout (no engine is left starting); the number of engines they were to start. */
  const abandon = async (list: EngineGroup[]): Promise<number> => {
    for (const g of list) abandoned.add(g);
    await endLaunches(list);
    const lost = list.reduce((a, g) => a + g.count, 0);
    state.engines -= lost;
    recordState();
    return lost;
  };

  /** Starts `n` engines with a launcher and resolves with their ids once they registered. */
  const launchMore = async (n: number, name: string, settings: LauncherSettings, timeoutMs: number): Promise<{ ids: number[] }> => {
    if (stopping) throw new ClusterStartError("The cluster is stopping.");
    const launcher = launcherFor(name, settings);
    const list = await launcher.start(n, { idBase: hub.freshIdBase() });
    supervise(list);
    state.engines += n;
    recordState();
    const r = await waitForRegistrations(hub, list, timeoutMs);
    if (r.complete) return { ids: r.ids };
    await abandon(r.unfinished);
    const kept = r.ids.filter((id) => hub.engineInfos().some((e) => e.id === id));
    throw new ClusterStartError(`${shortfall(r, timeoutMs)}; the engines still starting were stopped${kept.length ? `, the ${kept.length} that registered [${kept.join(", ")}] stay` : ""}.${r.output ? ` Engine output:\n${r.output}` : ""}`);
  };

  const deadline = o.deadline ?? Date.now() + o.timeout;
  let shortBy: string | undefined;
  try {
    const launched = await mainLauncher.start(o.n, { idBase: 0 });
    supervise(launched);
    const r = await waitForRegistrations(hub, launched, deadline - Date.now());
    if (!r.complete) {
      const lost = await abandon(r.unfinished);
      const kept = hub.engineInfos().length;
      const output = r.output ? ` Engine output:\n${r.output}` : "";
      if (kept === 0) throw new ClusterStartError(`${shortfall(r, o.timeout)}; the ${lost} still starting were stopped, and the controller.${output}`);
      shortBy = `${shortfall(r, o.timeout)}; the ${lost} still starting were stopped. The cluster keeps running with ${kept} engine${kept === 1 ? "" : "s"}: ` +
        `use it, add engines with \`ptcluster engines -n K${clusterFlags(o.profile, o.clusterId)}\`, or stop it with \`ptcluster stop${clusterFlags(o.profile, o.clusterId)}\`.${output}`;
    }
    ready = true;
  } catch (err) {
    report({ type: "failed", message: (err as Error).message });
    await shutdown("start failed", 1);
    return;
  }
  state.state = "running";
  writeClusterState(paths.stateFile, state);
  report({
    type: "ready",
    summary: {
      profile: o.profile, clusterId: o.clusterId, ids: hub.engineInfos().map((e) => e.id).sort((a, b) => a - b),
      clientFile: paths.clientFile, engineFile: paths.engineFile, controllerPid: process.pid, enginePids: [...state.enginePids],
    },
    ...(shortBy ? { shortfall: shortBy } : {}),
  });
}
