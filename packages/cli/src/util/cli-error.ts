import { PtclusterError } from "@ptcluster/protocol";
import { reportUsage, UsageError } from "./usage.js";

/** Prints one clear line for a failed command and sets a non-zero exit code (2 for a usage error). */
export function reportFailure(command: string, err: unknown): void {
  if (err instanceof UsageError) return reportUsage(command, err.message);
  const message = err instanceof PtclusterError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`ptcluster ${command}: ${message}\n`);
  if (process.env["PTCLUSTER_DEBUG"] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}

/** Where the CLI's own entry point is, to launch components as `node <bin> hub|engine …`. */
export function binPath(): string {
  return new URL("../bin.js", import.meta.url).pathname;
}
