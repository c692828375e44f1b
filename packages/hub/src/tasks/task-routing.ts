import { CutThrough, type CutThroughDeps } from "./cut-through.js";
import { TaskCoordinator, type TaskCoordinatorDeps } from "./task-coordinator.js";

/**
 * The coordinator and its cut-through (`cut-through.ts`), which need each other: the coordinator
 * starts the streams of the task bodies it places, and the cut-through submits streamed tasks and
 * reports forwarded results to the coordinator.
 */
export function taskRouting(
  core: Omit<TaskCoordinatorDeps, "streamTo">,
  links: Pick<CutThroughDeps, "client" | "engineCh" | "clientCh">,
): { coordinator: TaskCoordinator; cutThrough: CutThrough } {
  const coordinator = new TaskCoordinator({
    ...core,
    streamTo: (to, task, body, streamed) => cutThrough.streamTo(to, task, body, streamed),
  });
  const { tasks, delivery, engines, flush, log } = core;
  const cutThrough = new CutThrough({ coordinator, tasks, delivery, engines, flush, log, ...links });
  return { coordinator, cutThrough };
}
