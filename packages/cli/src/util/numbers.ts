import { InvalidOptionError, parseNumber, type NumberSpec } from "@ptcluster/protocol";
import { UsageError } from "./usage.js";

/** Runs an option's check; what it refuses is a usage error (one line, exit code 2). */
export function asUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw err instanceof InvalidOptionError && !(err instanceof UsageError) ? new UsageError(err.message) : err;
  }
}

/**
 * A yargs option that takes a number, checked by `parseNumber` (which quotes what was typed).
 * No `type`: yargs would convert the text before the check sees it.
 */
export function numberOption<D extends number | undefined = undefined>(
  spec: NumberSpec & { flag: string; describe: string; default?: D },
) {
  const { describe, default: def, ...rest } = spec;
  return {
    describe,
    requiresArg: false,
    coerce: (raw: unknown): number => (typeof raw === "number" ? raw : asUsage(() => parseNumber(rest, raw))),
    ...(def === undefined ? {} : { default: def }),
  } as { describe: string; requiresArg: false; coerce: (raw: unknown) => number } & (D extends number
    ? { default: D }
    : unknown);
}
