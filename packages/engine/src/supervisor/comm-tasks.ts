import type { CommAbortMsg, CommGroup, EngineTask, Part, TaskResult } from "@ptcluster/protocol";
import type { CommIn } from "./comm-transport.js";

interface Kept {
  msg: CommIn;
  parts: Part[];
  /** The executor generation it was posted to. */
  gen: number;
}

/** Groups whose messages are kept for a replaced executor (those with no task running here yet); the oldest go first. */
const KEPT_GROUPS = 256;

/**
 * What the supervisor knows of `engine.comm`, so that what the executor knows survives it:
 *
 * - a task that ends without its executor's word (timed out or cancelled and forced, its executor
 *   crashed or ran out of memory, dropped before it started) still ends its group for the other
 *   members, who would otherwise wait on it until their timeout (a task that threw is reported by
 *   the executor itself);
 * - messages for a group whose task has not started here yet, and the engines known lost, are
 *   posted again to the executor that replaces one (they lived in the old one's mailboxes). Once
 *   the task runs, its messages are no longer kept (a replacement fails it anyway).
 */
export class CommTasks {
  private readonly groups = new Map<number, CommGroup>();
  private readonly kept = new Map<string, Kept[]>();
  private readonly lost = new Map<number, Kept>();

  /** A task arrived from the controller. */
  received(task: EngineTask): void {
    if (task.comm && task.comm.ranks.length > 1) this.groups.set(task.id, task.comm);
  }

  /** A message was posted to the executor of generation `gen`. */
  posted(msg: CommIn, parts: Part[], gen: number): void {
    if (msg.type === "peer_state") {
      if (msg.up) this.lost.delete(msg.id);
      else this.lost.set(msg.id, { msg, parts, gen });
      return;
    }
    let list = this.kept.get(msg.g);
    if (!list) {
      list = [];
      this.kept.set(msg.g, list);
      if (this.kept.size > KEPT_GROUPS) this.kept.delete(this.kept.keys().next().value as string);
    }
    list.push({ msg, parts, gen });
  }

  /** Tasks running now (from the heartbeat): their groups' messages are in a live mailbox, no longer kept. */
  running(ids: readonly number[]): void {
    for (const id of ids) {
      const g = this.groups.get(id)?.g;
      if (g !== undefined) this.kept.delete(g);
    }
  }

  /** The executor of generation `ended` was replaced: what it held is posted to the new one (`post` says to which generation). */
  replay(ended: number, post: (msg: CommIn, parts: Part[]) => number): void {
    const again = [...this.lost.values(), ...[...this.kept.values()].flat()].filter((k) => k.gen <= ended);
    for (const k of again) k.gen = post(k.msg, k.parts);
  }

  /** A task's result is going out: the abort to send the other members, if the supervisor made it. */
  ended(result: TaskResult, engineId: number): CommAbortMsg | undefined {
    const group = this.groups.get(result.id);
    if (!group) return undefined;
    this.groups.delete(result.id);
    this.kept.delete(group.g);
    if (!result.sysError) return undefined;
    const rank = group.ranks.indexOf(engineId);
    return {
      type: "comm_abort",
      g: group.g,
      to: group.ranks.filter((id) => id !== engineId),
      error: {
        code: "ERR_PTC_COMM_PEER_LOST",
        message: `Rank ${rank} (engine ${engineId}) of this call ended without finishing (${result.sysError.message}): it will send no more messages.`,
      },
    };
  }

  /** Every task was dropped (the controller asked this engine to register again). */
  clear(): void {
    this.groups.clear();
    this.kept.clear();
  }
}
