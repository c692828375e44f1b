import type { ChannelStats, CommPathCounts, HeartbeatMsg } from "@ptcluster/protocol";

export interface HeartbeatSources {
  stats: ChannelStats;
  running: number;
  done: number;
  /** Running tasks as `[controller id, ms since start]`. */
  current: Array<[number, number]>;
  comm: CommPathCounts;
  /** DirectView tasks that came straight from clients, and results sent straight back. */
  direct: { tasks: number; results: number };
}

/** The engine's heartbeat: its load, the tasks it runs, and its view of its links, for `ptcluster status`. */
export function heartbeatMsg(s: HeartbeatSources, now: number): HeartbeatMsg {
  const { sent, received, retransmitted, dropped, faults } = s.stats;
  return {
    type: "heartbeat",
    t: now,
    running: s.running,
    done: s.done,
    // The running tasks ride on the heartbeat rather than a message per start: nothing is added
    // to a task's own path, and `ptcluster status` (the only reader) can be a period behind.
    ...(s.current.length ? { current: s.current } : {}),
    link: {
      sent,
      received,
      retransmitted,
      dropped: { ...dropped },
      ...(faults ? { faults: { ...faults } } : {}),
      comm: s.comm,
      ...(s.direct.tasks ? { direct: { ...s.direct } } : {}),
    },
  };
}
