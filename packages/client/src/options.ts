import { InvalidOptionError, describeValue, type Logger } from "@ptcluster/protocol";

export interface ConnectOptions {
  /** Profile whose cluster to connect to (default `default`). */
  profile?: string;
  /** Cluster id within the profile, for several clusters per profile. */
  clusterId?: string;
  /** Explicit client connection file (overrides profile and cluster id). */
  file?: string;
  /** How long to wait for the controller to answer (ms, default 5000). */
  timeout?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface ResolvedConnectOptions {
  profile: string;
  clusterId: string;
  file: string | undefined;
  timeout: number;
  signal: AbortSignal | undefined;
  logger: Logger | undefined;
}

const CONNECT_KEYS = new Set(["profile", "clusterId", "file", "timeout", "signal", "logger"]);

/** A value as messages quote it; one definition, shared with the option table's checks. */
export { describeValue };

export function rejectUnknownKeys(options: object, known: Set<string>, what: string): void {
  for (const k of Object.keys(options)) {
    if (!known.has(k))
      throw new InvalidOptionError(`Unknown ${what} option \`${k}\`. Known options: ${[...known].join(", ")}.`);
  }
}

export function nonNegativeInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new InvalidOptionError(`Expected \`${name}\` to be a non-negative integer, got ${describeValue(v)}`);
  }
  return v;
}

/**
 * The `targets` of `rc.view`/`rc.loadBalancedView` (`call`): undefined (every engine) or an array
 * of engine ids, copied. A lone id is refused, not read as "every engine" (`rc.view(0)`: 0 is falsy).
 */
export function validateTargets(call: string, targets: unknown): number[] | undefined {
  if (targets === undefined) return undefined;
  if (Array.isArray(targets) && targets.every((t) => Number.isInteger(t) && (t as number) >= 0)) return [...targets];
  const one =
    typeof targets === "number"
      ? `. For engine ${targets} alone: \`rc.${call}([${targets}])\`, or \`rc.engine(${targets})\` for its result unwrapped.`
      : "";
  throw new InvalidOptionError(
    `Expected \`targets\` of rc.${call}() to be an array of engine ids (from \`rc.ids\`), got ${describeValue(targets)}${one}`,
  );
}

export function validateConnectOptions(o: ConnectOptions): ResolvedConnectOptions {
  if (typeof o !== "object" || o === null)
    throw new InvalidOptionError(`Expected connect options to be an object, got ${describeValue(o)}`);
  rejectUnknownKeys(o, CONNECT_KEYS, "connect");
  for (const k of ["profile", "clusterId", "file"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "string")
      throw new InvalidOptionError(`Expected \`${k}\` to be a string, got ${describeValue(o[k])}`);
  }
  if (o.signal !== undefined && Object.prototype.toString.call(o.signal) !== "[object AbortSignal]") {
    throw new InvalidOptionError(`Expected \`signal\` to be an AbortSignal, got ${describeValue(o.signal)}`);
  }
  return {
    profile: o.profile ?? process.env["PTCLUSTER_PROFILE"] ?? "default",
    clusterId: o.clusterId ?? "",
    file: o.file,
    timeout: o.timeout === undefined ? 5_000 : nonNegativeInt("timeout", o.timeout),
    signal: o.signal,
    logger: o.logger,
  };
}
