import { AsyncLocalStorage } from "node:async_hooks";
import { format } from "node:util";

/** Per-task context: output buffers and the task's cancellation signal. */
export interface TaskContext {
  id: number;
  stdout: string[];
  stderr: string[];
  controller: AbortController;
  /**
   * `engine.comm` of a DirectView call's task (undefined for load-balanced tasks), built on first
   * use: most tasks of a DirectView call never touch it, and a task costs less without it.
   */
  comm?: () => unknown;
}

export const taskStore = new AsyncLocalStorage<TaskContext>();

/**
 * Routes `console.*` and `process.stdout/stderr.write` of the task running now into its own
 * buffers (per task, even with several tasks at once); output outside any task goes to the
 * engine's own streams.
 */
export function installOutputCapture(): void {
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const wrap = (kind: "stdout" | "stderr", orig: typeof origOut) =>
    function write(chunk: unknown, ...rest: unknown[]): boolean {
      const ctx = taskStore.getStore();
      if (!ctx) return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
      ctx[kind].push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      if (cb) queueMicrotask(cb);
      return true;
    };
  process.stdout.write = wrap("stdout", origOut) as typeof process.stdout.write;
  process.stderr.write = wrap("stderr", origErr) as typeof process.stderr.write;
  const toOut = (...args: unknown[]) => emit("stdout", args);
  const toErr = (...args: unknown[]) => emit("stderr", args);
  const c = globalThis.console as unknown as Record<string, unknown>;
  for (const m of ["log", "info", "debug", "trace"]) c[m] = toOut;
  for (const m of ["error", "warn"]) c[m] = toErr;
  function emit(kind: "stdout" | "stderr", args: unknown[]): void {
    const line = `${format(...args)}\n`;
    const ctx = taskStore.getStore();
    if (ctx) ctx[kind].push(line);
    else (kind === "stdout" ? origOut : origErr)(line);
  }
}
