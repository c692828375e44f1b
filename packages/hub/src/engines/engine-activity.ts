import type { HeartbeatMsg, RunningTask } from "@ptcluster/protocol";
import type { EngineEntry } from "./engine-registry.js";
import type { TaskTable } from "../tasks/task-table.js";

/** What an engine's heartbeat says of it: how many tasks run, its link's report, which tasks run. */
export function noteHeartbeat(entry: EngineEntry, hb: HeartbeatMsg, now: number): void {
  entry.info.running = hb.running ?? entry.info.running;
  entry.info.state = entry.info.running > 0 ? "busy" : "idle";
  if (hb.link) entry.link = hb.link;
  noteRunning(entry, hb.current, now);
}

/**
 * Takes an engine's heartbeat report of its running tasks (`[id, ms running]`; none: nothing
 * runs) as the new set, keeping the start already known for a task still running, so a duration
 * does not jitter with each heartbeat's transit time.
 */
export function noteRunning(entry: EngineEntry, reported: unknown, now: number): void {
  if (!Array.isArray(reported) || reported.length === 0) {
    if (entry.current.size) entry.current.clear();
    return;
  }
  const next = new Map<number, number>();
  // An engine runs at most `concurrency` tasks: more entries than that are not believed.
  for (const pair of reported.slice(0, entry.info.concurrency)) {
    if (!Array.isArray(pair)) continue;
    const [id, ms] = pair as unknown[];
    if (typeof id !== "number" || typeof ms !== "number" || !(ms >= 0)) continue;
    next.set(id, entry.current.get(id) ?? now - ms);
  }
  entry.current = next;
}

/**
 * What `rc.status()` shows of an engine's work: the tasks running there (those of its last
 * heartbeat not finished since) and how many more wait there.
 */
export function engineActivity(entry: EngineEntry, tasks: TaskTable): { current: RunningTask[]; queued: number } {
  const current: RunningTask[] = [];
  for (const [id, since] of entry.current) {
    const rec = tasks.get(id);
    if (!rec || !entry.inflight.has(id)) continue;
    current.push({ taskId: `${rec.clientKey}:${rec.localId}`, fn: rec.name ?? rec.op, op: rec.op, since });
  }
  return { current, queued: Math.max(0, entry.inflight.size - current.length) };
}
