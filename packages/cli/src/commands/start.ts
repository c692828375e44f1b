import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Hub } from "@ptcluster/hub";
import {
  ClusterStartError, InvalidOptionError, createLogger, ensureProfileDirs, newClusterKey, newCurveMaterial, pidAlive, profilePaths, readAllowedKeys,
  readClusterState, writeClusterState, type ClusterState, type ProfilePaths, type SchedulerScheme,
} from "@ptcluster/protocol";
import { LocalLauncher } from "../launchers/local.js";
import type { LaunchedEngine } from "../launchers/launcher.js";
import { binPath } from "../util/cli-error.js";
import { checkExposure } from "../util/exposure.js";
import { mebibytes } from "../util/units.js";

/** Options of `ptcluster start`; the same names as `startCluster()` takes. */
export interface StartOptions {
  n: number;
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
  if (!Number.isInteger(o.n) || o.n < 0) throw new InvalidOptionError(`Expected \`-n\` to be a non-negative integer, got \`${o.n}\``);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new InvalidOptionError(`Expected \`--concurrency\` to be a positive integer, got \`${o.concurrency}\``);
  checkExposure(o.ip, o.curve, o.encryption);
  const paths = profilePaths(o.profile, o.clusterId);
  assertNotRunning(paths);
  ensureProfileDirs(paths);
  if (o.foreground) return runController(o, paths);
  const summary = await spawnDaemon(o, paths);
  printSummary(summary, o.json);
}

function printSummary(s: StartSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const id = s.clusterId ? ` --cluster-id ${s.clusterId}` : "";
  const prof = s.profile !== "default" ? ` --profile ${s.profile}` : "";
  process.stdout.write(
    `Cluster started: ${s.ids.length} engine${s.ids.length === 1 ? "" : "s"} [${s.ids.join(", ")}]\n` +
      `  profile     ${s.profile}${s.clusterId ? ` (cluster id ${s.clusterId})` : ""}\n` +
      `  connection  ${s.clientFile}\n` +
      `  controller  pid ${s.controllerPid}; engine pids ${s.enginePids.join(", ") || "none"}\n` +
      `Connect with \`ptcluster repl${prof}${id}\` or \`await connect(${s.profile !== "default" || s.clusterId ? JSON.stringify({ profile: s.profile, ...(s.clusterId ? { clusterId: s.clusterId } : {}) }) : ""})\`; stop with \`ptcluster stop${prof}${id}\`.\n`,
  );
}

/** Starts the controller as a detached process and returns once all its engines registered. */
async function spawnDaemon(o: StartOptions, paths: ProfilePaths): Promise<StartSummary> {
  const errFile = join(paths.logDir, `controller${paths.clusterId ? `-${paths.clusterId}` : ""}.stderr`);
  const fd = openSync(errFile, "w", 0o600);
  const args = [binPath(), "start", "--foreground", "--ipc-ready", "-n", String(o.n), "--profile", o.profile, "--ip", o.ip,
    "--concurrency", String(o.concurrency), "--timeout", String(o.timeout), "--heartbeat", String(o.heartbeatMs), "--scheme", o.scheme];
  if (!o.restart) args.push("--no-restart");
  if (o.maxMemory !== undefined) args.push("--max-memory", String(o.maxMemory));
  args.push("--max-message-mb", String(o.maxMessageMb), "--client-timeout", String(o.clientTimeoutMs), "--result-ttl", String(o.resultTtlMs));
  if (o.curve) args.push("--curve");
  if (o.encryption === false) args.push("--no-encryption");
  if (o.clusterId) args.push("--cluster-id", o.clusterId);
  if (o.location) args.push("--location", o.location);
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", "ignore", fd, "ipc"] });
  closeSync(fd);
  const readErr = () => {
    try {
      return readFileSync(errFile, "utf8").trim();
    } catch {
      return "";
    }
  };
  return new Promise<StartSummary>((resolve, reject) => {
    child.on("message", (m: { type: string; summary?: StartSummary; message?: string }) => {
      if (m.type === "ready" && m.summary) {
        child.removeAllListeners("exit");
        child.disconnect();
        child.unref();
        resolve(m.summary);
      } else if (m.type === "failed") {
        reject(new ClusterStartError(m.message ?? "the controller failed to start"));
      }
    });
    child.on("exit", (code, signal) => {
      const err = readErr();
      reject(new ClusterStartError(`The controller exited (${signal ?? `code ${code}`}) before the cluster was ready${err ? `:\n${err}` : "."}`));
    });
  });
}

/** The controller process: hub in-process, engines launched and supervised here. */
async function runController(o: StartOptions, paths: ProfilePaths): Promise<void> {
  const logger = createLogger({ name: "ptcluster", file: join(paths.logDir, `hub${paths.clusterId ? `-${paths.clusterId}` : ""}.log`) });
  const report = (msg: { type: "ready"; summary: StartSummary } | { type: "failed"; message: string }) => {
    if (o.ipcReady && process.send) {
      process.send(msg, () => process.disconnect?.());
    } else if (msg.type === "ready") printSummary(msg.summary, o.json);
  };
  const curve = o.curve ? { ...newCurveMaterial(), allowedKeys: readAllowedKeys(paths.allowedKeysFile) } : undefined;
  const hub = new Hub({ profile: o.profile, clusterId: o.clusterId, ip: o.ip, key: newClusterKey(), ...(curve ? { curve } : {}), heartbeatMs: o.heartbeatMs, scheme: o.scheme, maxMessageBytes: mebibytes(o.maxMessageMb), clientTimeoutMs: o.clientTimeoutMs, resultTtlMs: o.resultTtlMs, logger, ...(o.location ? { location: o.location } : {}) });
  await hub.start();
  const state: ClusterState = { profile: o.profile, clusterId: o.clusterId, hubPid: process.pid, enginePids: [], startedAt: Date.now(), state: "starting", engines: o.n };
  writeClusterState(paths.stateFile, state);
  const launcher = new LocalLauncher({ engineFile: paths.engineFile, logDir: paths.logDir, concurrency: o.concurrency, maxMemoryMb: o.maxMemory });
  const engines = new Set<LaunchedEngine>();
  let stopping = false;

  const shutdown = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    state.state = "stopping";
    writeClusterState(paths.stateFile, state);
    await hub.stop(reason);
    const deadline = Date.now() + 1_000;
    for (const e of engines) {
      const left = Math.max(0, deadline - Date.now());
      const t = setTimeout(() => e.kill("SIGKILL"), left);
      await e.exited;
      clearTimeout(t);
    }
    rmSync(paths.stateFile, { force: true });
    logger.flush?.();
    process.exit(code);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  void hub.stopped.then(() => shutdown("controller stopped"));

  let ready = false;
  /** Recent deaths of engines that never registered: the sign of a crash loop. */
  const failedStarts: number[] = [];
  const registered = new Set<number>();
  hub.on("engine_up", (info) => registered.add(info.pid));
  const supervise = (list: LaunchedEngine[]) => {
    for (const e of list) {
      engines.add(e);
      state.enginePids.push(e.pid);
      void e.exited.then((code) => {
        engines.delete(e);
        state.enginePids = state.enginePids.filter((p) => p !== e.pid);
        if (stopping) return;
        logger.warn({ pid: e.pid, code }, "engine process exited");
        hub.engineProcessExited(e.pid, typeof code === "string" ? code : `code ${code}`);
        // Replace it (it registers with a new id), unless restarts are off or replacements keep
        // dying before they even register (a crash loop: a broken install, a bad NODE_OPTIONS).
        const now = Date.now();
        if (!registered.delete(e.pid)) failedStarts.push(now);
        while (failedStarts.length && (failedStarts[0] as number) < now - 10_000) failedStarts.shift();
        if (ready && o.restart && failedStarts.length < Math.max(3, o.n)) {
          supervise(launcher.start(1));
        } else if (ready && o.restart) {
          logger.error({ failedStarts: failedStarts.length }, "replacement engines die before registering; not restarting them");
        }
        writeClusterState(paths.stateFile, state);
      });
    }
  };
  const launched = launcher.start(o.n);
  supervise(launched);
  writeClusterState(paths.stateFile, state);

  try {
    await waitForRegistrations(hub, launched, o.n, o.timeout);
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
  });
}

/** Resolves when `n` engines registered; rejects with an engine's output if one exits first, or on timeout. */
function waitForRegistrations(hub: Hub, launched: LaunchedEngine[], n: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const registeredPids = new Set<number>();
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      hub.off("engine_up", onUp);
      if (err) reject(err);
      else resolve();
    };
    const onUp = (info: { pid: number }) => {
      registeredPids.add(info.pid);
      if (hub.engineInfos().length >= n) done();
    };
    hub.on("engine_up", onUp);
    if (n === 0) done();
    for (const e of launched) {
      void e.exited.then((code) => {
        if (registeredPids.has(e.pid)) return;
        const out = e.output().trim();
        done(new ClusterStartError(`Engine process ${e.pid} exited (${typeof code === "string" ? code : `code ${code}`}) before registering${out ? `:\n${out}` : "."}`));
      });
    }
    const timer = setTimeout(() => {
      const outputs = launched.filter((e) => !registeredPids.has(e.pid)).map((e) => e.output().trim()).filter(Boolean);
      done(new ClusterStartError(`Only ${hub.engineInfos().length} of ${n} engines registered within ${timeoutMs} ms.${outputs.length ? ` Engine output:\n${outputs[0]}` : ""}`));
    }, timeoutMs);
  });
}
