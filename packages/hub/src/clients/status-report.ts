import type { Channel, ClientToHub, EngineToHub, HubToClient, HubToEngine, ProfilePaths } from "@ptcluster/protocol";
import type { Pipelines } from "../pipelines/pipeline-service.js";
import { engineActivity } from "../engines/engine-activity.js";
import type { EngineRegistry } from "../engines/engine-registry.js";
import type { ResultStore } from "../results/result-store.js";
import type { TaskTable } from "../tasks/task-table.js";
import type { SharedStore } from "../shared-state/store.js";
import type { CutThroughCounts } from "../tasks/streamed-body.js";

/** What `rc.status()` and `queue_status` read from. */
export interface StatusSources {
  paths: ProfilePaths;
  clusterId: string;
  ports: { client: number; engine: number; notify: number };
  logFile: string | undefined;
  engines: EngineRegistry;
  tasks: TaskTable;
  /** Load-balanced tasks waiting for an engine. */
  unassigned(): number;
  store: ResultStore;
  /** Function sources kept. */
  functions(): number;
  clients(): number;
  clientCh: Channel<ClientToHub, HubToClient>;
  engineCh: Channel<EngineToHub, HubToEngine>;
  /** Shared state: its objects are listed with their sizes. */
  shared: SharedStore;
  pipelines: Pick<Pipelines, "describe">;
  cutThrough: CutThroughCounts;
}

/** What `rc.status()` answers. */
export function statusReport(s: StatusSources): unknown {
  const mem = process.memoryUsage();
  const { clientCh, engineCh } = s;
  return {
    // The controller's clock: `since` of running tasks counts from it.
    time: Date.now(),
    pid: process.pid,
    profile: s.paths.profile,
    clusterId: s.clusterId,
    ports: s.ports,
    engines: [...s.engines.all()].map((e) => ({
      ...e.info,
      running: e.inflight.size,
      ...engineActivity(e, s.tasks),
      ...(e.link ? { link: e.link } : {}),
    })),
    clients: s.clients(),
    tasksInFlight: s.tasks.size,
    unassigned: s.unassigned(),
    // Messages refused (bad tag, failed authentication, duplicates and replays, malformed), per socket.
    dropped: { client: { ...clientCh.stats.dropped }, engine: { ...engineCh.stats.dropped } },
    messages: {
      client: {
        received: clientCh.stats.received,
        sent: clientCh.stats.sent,
        retransmitted: clientCh.stats.retransmitted,
      },
      engine: {
        received: engineCh.stats.received,
        sent: engineCh.stats.sent,
        retransmitted: engineCh.stats.retransmitted,
      },
    },
    // Only while fault injection (PTCLUSTER_TEST_FAULTS) is on: what it did to this controller's sends.
    ...(clientCh.stats.faults && engineCh.stats.faults
      ? { faults: { client: { ...clientCh.stats.faults }, engine: { ...engineCh.stats.faults } } }
      : {}),
    // Where to look when something went wrong: the profile's log directory and this controller's log.
    log: { dir: s.paths.logDir, ...(s.logFile ? { file: s.logFile } : {}) },
    // Shared objects with their sizes (entries, items or elements), bytes and waiting calls.
    shared: { objects: s.shared.describe(), bytes: s.shared.budget.used, maxBytes: s.shared.budget.maxBytes },
    pipelines: s.pipelines.describe(),
    // Large messages passed on fragment by fragment as they arrived (tasks/cut-through.ts).
    cutThrough: { ...s.cutThrough },
    memory: { rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers },
    // What the controller holds on behalf of clients and engines: all of it goes when they do
    // (sessions excepted: bounded, they keep old messages from being replayed).
    retained: {
      tasks: s.tasks.size,
      results: s.store.size,
      resultBytes: s.store.bytes,
      functions: s.functions(),
      clientLinks: clientCh.linkCount,
      engineLinks: engineCh.linkCount,
      sessions: clientCh.sessionCount + engineCh.sessionCount,
      sharedObjects: s.shared.size,
      sharedBytes: s.shared.budget.used,
    },
  };
}

/** What `queue_status` answers: per engine, tasks waiting there, running and done. */
export function queueStatus(s: Pick<StatusSources, "engines" | "unassigned">): unknown {
  const engines: Record<string, { queued: number; running: number; completed: number }> = {};
  for (const e of s.engines.all()) {
    const running = Math.min(e.inflight.size, e.info.concurrency);
    engines[e.info.id] = { queued: e.inflight.size - running, running, completed: e.info.tasksDone };
  }
  return { engines, unassigned: s.unassigned() };
}
