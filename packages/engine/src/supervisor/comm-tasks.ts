import type { CommAbortMsg, CommGroup, EngineTask, TaskResult } from "@ptcluster/protocol";

/**
 * The groups of this engine's tasks, as the supervisor sees them, so a task that ends without its
 * executor's word (timed out or cancelled and forced, its executor crashed or ran out of memory,
 * or dropped before it started) still ends its group for the other members: they would otherwise
 * wait on it until their timeout. A task that threw is reported by the executor itself.
 */
export class CommTasks {
  private readonly groups = new Map<number, CommGroup>();

  /** A task arrived from the controller. */
  received(task: EngineTask): void {
    if (task.comm && task.comm.ranks.length > 1) this.groups.set(task.id, task.comm);
  }

  /** A task's result is going out: the abort to send the other members, if the supervisor made it. */
  ended(result: TaskResult, engineId: number): CommAbortMsg | undefined {
    const group = this.groups.get(result.id);
    if (!group) return undefined;
    this.groups.delete(result.id);
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
  }
}
