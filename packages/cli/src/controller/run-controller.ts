import { rmSync } from "node:fs";
import { join } from "node:path";
import { Hub } from "@ptcluster/hub";
import {
  ClusterStartError,
  createLogger,
  writeClusterState,
  type ClusterState,
  type ProfilePaths,
} from "@ptcluster/protocol";
import { createLauncher, type EngineGroup, type Launcher, type LauncherSettings } from "../launchers/index.js";
import { endLaunches, shortfall, waitForRegistrations } from "../commands/registrations.js";
import type { Report } from "./daemon.js";
import { hubOptions } from "./hub-options.js";
import { followOwner } from "./owner-link.js";
import { launchContext, launcherSettings, settingsFrom, type ReadyValues } from "./prepare.js";
import { clusterArgs, printSummary } from "./summary.js";

/** The controller process: hub in-process, engines launched and supervised here. */
export async function runController(o: ReadyValues, paths: ProfilePaths): Promise<void> {
  const logFile = join(paths.logDir, `hub${paths.clusterId ? `-${paths.clusterId}` : ""}.log`);
  const logger = createLogger({ name: "ptcluster", file: logFile, echo: !o.ipcReady });
  const report = (msg: Report) => {
    if (o.ipcReady) {
      // The process that spawned it may be gone already (it ended during the start): no one to tell.
      if (process.send && process.connected)
        process.send(msg, () => {
          if (process.connected) process.disconnect();
        });
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
  const settings = launcherSettings(o);
  const mainLauncher = launcherFor(o.engines, settings);
  const hub: Hub = new Hub(
    hubOptions(o, paths, {
      logger,
      logFile,
      launch: (req) =>
        launchMore(
          req.n,
          req.launcher || o.engines,
          req.launcher ? settingsFrom(req.options) : { ...settings, ...settingsFrom(req.options) },
          Number(req.options["timeout"] ?? o.timeout),
        ),
    }),
  );
  await hub.start();
  const state: ClusterState = {
    profile: o.profile,
    clusterId: o.clusterId,
    hubPid: process.pid,
    enginePids: [],
    startedAt: Date.now(),
    state: "starting",
    engines: o.n,
    jobs: [],
  };
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
    await Promise.all(
      [...groups].map(async (g) => {
        const t = setTimeout(() => g.kill("SIGTERM"), Math.max(0, deadline - 500 - Date.now()));
        const k = setTimeout(() => g.kill("SIGKILL"), Math.max(0, deadline - Date.now()));
        await g.exited;
        clearTimeout(t);
        clearTimeout(k);
      }),
    );
    rmSync(paths.stateFile, { force: true });
    logger.flush?.();
    process.exit(code);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  // Started by `startCluster()` without `detached`: ends with the process that started it.
  if (o.ipcReady && !o.detached) followOwner(() => void shutdown("the process that started the cluster ended"));
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
    // Launched while stopping (the owner ended during start): past the stop path's reach.
    if (stopping) for (const g of list) g.kill("SIGTERM");
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
          if (ready)
            logger.error(
              { where: g.where, code, output: g.output().slice(-2_000) },
              "engines ended before registering; not restarting them",
            );
        } else if (ready && o.restart && failedStarts.length < Math.max(3, o.n)) {
          g.relaunch({ idBase: hub.freshIdBase() }).then(supervise, (err: Error) =>
            logger.error({ err, where: g.where }, "could not relaunch engines"),
          );
        } else if (ready && o.restart) {
          logger.error(
            { failedStarts: failedStarts.length },
            "replacement engines die before registering; not restarting them",
          );
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
  const launchMore = async (
    n: number,
    name: string,
    settings: LauncherSettings,
    timeoutMs: number,
  ): Promise<{ ids: number[] }> => {
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
    throw new ClusterStartError(
      `${shortfall(r, timeoutMs)}; the engines still starting were stopped${kept.length ? `, the ${kept.length} that registered [${kept.join(", ")}] stay` : ""}.${r.output ? ` Engine output:\n${r.output}` : ""}`,
    );
  };

  const deadline = o.deadline;
  let shortBy: string | undefined;
  let missed: string | undefined;
  try {
    const launched = await mainLauncher.start(o.n, { idBase: 0 });
    supervise(launched);
    const r = await waitForRegistrations(hub, launched, deadline - Date.now());
    if (!r.complete) {
      const lost = await abandon(r.unfinished);
      const kept = hub.engineInfos().length;
      const output = r.output ? ` Engine output:\n${r.output}` : "";
      if (kept === 0)
        throw new ClusterStartError(
          `${shortfall(r, o.timeout)}; the ${lost} still starting were stopped, and the controller.${output}`,
        );
      missed = `${shortfall(r, o.timeout)}; the ${lost} still starting were stopped.`;
      shortBy =
        `${shortfall(r, o.timeout)}; the ${lost} still starting were stopped. The cluster keeps running with ${kept} engine${kept === 1 ? "" : "s"}: ` +
        `use it, add engines with \`ptcluster engines -n K${clusterArgs(o.profile, o.clusterId)}\`, or stop it with \`ptcluster stop${clusterArgs(o.profile, o.clusterId)}\`.${output}`;
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
      profile: o.profile,
      clusterId: o.clusterId,
      ids: hub
        .engineInfos()
        .map((e) => e.id)
        .sort((a, b) => a - b),
      clientFile: paths.clientFile,
      engineFile: paths.engineFile,
      controllerPid: process.pid,
      enginePids: [...state.enginePids],
    },
    ...(shortBy ? { shortfall: shortBy, missed } : {}),
  });
}
