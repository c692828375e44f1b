/**
 * Below this run time (ms) a task counts as quick: the supervisor posts tasks ahead while the
 * average is under it (`TaskRunner`), and the executor batches the results before a task whose
 * function's recent runs all were (`executor/worker.ts`).
 */
export const QUICK_MS = 2;

/**
 * Tasks posted to the executor beyond its free slots while tasks are quick, so it never waits a
 * thread hop for its next task, and its results leave in batches (measured on 5,000 noop tasks:
 * none costs about 3x the CPU, 4 about 1.6x). `release` can still ask for them back.
 */
export const PREFETCH = 16;
