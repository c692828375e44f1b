import { UsageError } from "./usage.js";

/** What a numeric option takes: whole numbers (or decimals) within a range. */
export interface NumberSpec {
  /** `-n`, `--timeout`: the flag as the user types it, for messages */
  flag: string;
  /** what it takes, for messages: "a number of engines", "a time in ms", "a port number" */
  what: string;
  min: number;
  max?: number;
  /** decimals allowed (default: whole numbers only) */
  decimal?: boolean;
  /** `min` itself is not allowed */
  above?: boolean;
  /** a value to show in "needs a value, as …" */
  example?: number;
}

/**
 * Parses a numeric option as the user typed it. Options are parsed as text (not yargs'
 * `type: "number"`, which turns `abc` into NaN and a bare `-n` into nothing), so the message
 * quotes what was received.
 */
export function parseNumber(spec: NumberSpec, raw: unknown): number {
  const range = spec.above ? `above ${spec.min}${spec.max === undefined ? "" : ` and at most ${spec.max}`}` : spec.max === undefined ? `${spec.min} or more` : `${spec.min} to ${spec.max}`;
  if (Array.isArray(raw)) throw new UsageError(`${spec.flag} was given ${raw.length} times (${raw.join(", ")}); give it once`);
  if (raw === true || raw === "" || raw === undefined) {
    throw new UsageError(`${spec.flag} needs a value: ${spec.what}, ${range}, as ${spec.flag} ${spec.example ?? Math.max(spec.min, 1)}`);
  }
  const text = String(raw).trim();
  const ok = spec.decimal ? /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text) : /^[+-]?\d+$/.test(text);
  const n = Number(text);
  if (!ok || !Number.isFinite(n) || n < spec.min || (spec.above && n === spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new UsageError(`${spec.flag} takes ${spec.what}, ${range}; got ${JSON.stringify(String(raw))}`);
  }
  return n;
}

/**
 * A yargs option that takes a number, checked by {@link parseNumber}. No `type`: yargs would
 * convert the text before the check sees it.
 */
export function numberOption<D extends number | undefined = undefined>(spec: NumberSpec & { describe: string; default?: D }) {
  const { describe, default: def, ...rest } = spec;
  return {
    describe,
    requiresArg: false,
    coerce: (raw: unknown): number => (typeof raw === "number" ? raw : parseNumber(rest, raw)),
    ...(def === undefined ? {} : { default: def }),
  } as { describe: string; requiresArg: false; coerce: (raw: unknown) => number } & (D extends number ? { default: D } : unknown);
}
