import { setFlagsFromString } from "node:v8";

/**
 * How much bytecode a function runs before V8 optimizes it, in an engine process (V8's default in
 * Node 20: 67,584). Node 20's V8 has only one optimizing tier, reached late: the first thousands
 * of `engine.comm` messages of fresh engines ran in the interpreter and cost 2.3× what they cost
 * once optimized (a ping-pong's median round trip 415 µs, then 162 µs), and short compute tasks
 * ran their loops unoptimized too. With 8 KiB the hot paths are optimized within the first few
 * hundred messages: interleaved `npm run bench` runs gave `comm_pingpong` ×0.25 to ×0.41,
 * `comm_allreduce_scalar` ×0.77 to ×0.8 (one run ×1.6), `cpu_map_busy` efficiency ×1.3 to ×1.5, the
 * other workloads within their runs' spread (docs/comm-transport.md).
 */
export const ENGINE_INTERRUPT_BUDGET = 8 * 1024;

/**
 * Sets the engine's budget for the whole process (V8 flags are per process; the executor thread,
 * started later, gets it too), unless the engine was started with `node --interrupt-budget=…`.
 */
export function tuneJit(): void {
  if (process.execArgv.some((a) => a.startsWith("--interrupt-budget"))) return;
  setFlagsFromString(`--interrupt-budget=${ENGINE_INTERRUPT_BUDGET}`);
}
