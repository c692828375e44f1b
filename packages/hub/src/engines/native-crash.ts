/**
 * Signals that end a process because of what it ran (a native addon's fault, a fatal error of
 * Node), not because someone outside stopped it (SIGTERM, SIGKILL, the OOM killer's SIGKILL).
 */
const NATIVE_CRASHES = new Set(["SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGSYS", "SIGTRAP"]);

/**
 * The signal, if a launch that ended (`how`: its exit, as its launcher saw it) was a native crash
 * its engine's task caused. Only a launch of one engine says which engine crashed: when a launch
 * of several (an `mpiexec`) dies, its engines are lost as from outside.
 */
export function nativeCrash(how: string, enginesOfLaunch: number): string | undefined {
  return enginesOfLaunch === 1 && NATIVE_CRASHES.has(how) ? how : undefined;
}
