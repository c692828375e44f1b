import { SerializationError, type FailureInfo, type ShippedFunctionOrigin } from "@ptcluster/protocol";
import { VALUE_FILE } from "./compile.js";

/**
 * Turns anything user code throws (an Error, a string, a cyclic object, a DOMException) into a plain,
 * serialisable description, so a failure can always be reported.
 */
/** Wraps what one item of a map chunk threw, with the item's index in the chunk. */
export class MapItemFailure {
  constructor(
    readonly item: number,
    readonly thrown: unknown,
  ) {}
}

/** Which shipped function value a hash was compiled from (the worker remembers them). */
export type OriginOf = (hash: string) => ShippedFunctionOrigin | undefined;

export function toFailure(thrown: unknown, originOf?: OriginOf): FailureInfo {
  if (thrown instanceof MapItemFailure) return { ...toFailure(thrown.thrown, originOf), item: thrown.item };
  if (thrown instanceof Error || isErrorLike(thrown)) {
    const e = thrown as Error & { code?: unknown };
    const name = safeString(() => e.name, "Error");
    const message = safeString(() => e.message, "");
    const info: FailureInfo = {
      name,
      message,
      stack: safeString(() => e.stack ?? `${name}: ${message}`, `${name}: ${message}`),
    };
    const code = safeString(() => (typeof e.code === "string" || typeof e.code === "number" ? String(e.code) : ""), "");
    if (code) info.code = code;
    if (name === "ReferenceError") {
      const m = /^(\S+) is not defined$/.exec(message);
      if (m?.[1]) info.undefinedName = m[1];
      const origin = originOf && info.undefinedName ? shippedOrigin(info.stack, originOf) : undefined;
      if (origin) info.shippedFunction = origin;
    }
    return info;
  }
  const message = safeString(() => (typeof thrown === "string" ? thrown : describe(thrown)), "<unprintable value>");
  return { name: "NonErrorThrown", message: `a non-Error value was thrown: ${message}`, stack: "" };
}

/** The shipped function value the top frame of `stack` runs in, if it is one. */
function shippedOrigin(stack: string, originOf: OriginOf): ShippedFunctionOrigin | undefined {
  const frame = /^\s+at .*$/m.exec(stack)?.[0];
  const hash = frame ? VALUE_FILE.exec(frame)?.[1] : undefined;
  return hash ? originOf(hash) : undefined;
}

/**
 * The failure of a task whose value could not be sent back: a `SerializationError` for the
 * client, naming the path; in a map, the path within the item (`result.cb` of item 3).
 */
export function unsendableFailure(err: unknown, isMap: boolean): FailureInfo {
  const e =
    err instanceof SerializationError ? err : new SerializationError("result", (err as Error)?.message ?? String(err));
  const info = toFailure(e);
  let path = e.path;
  const m = isMap ? /^result\[(\d+)\](.*)$/.exec(path) : null;
  if (m) {
    info.item = Number(m[1]);
    path = `result${m[2] ?? ""}`;
  }
  info.unsendable = { path, reason: e.reason };
  return info;
}

function isErrorLike(x: unknown): boolean {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as { message?: unknown }).message === "string" &&
    typeof (x as { name?: unknown }).name === "string"
  );
}

function describe(x: unknown): string {
  try {
    const json = JSON.stringify(x);
    if (json !== undefined) return json.length > 500 ? `${json.slice(0, 500)}…` : json;
  } catch {
    /* cyclic or throwing toJSON: fall through */
  }
  return String(x);
}

function safeString(f: () => unknown, fallback: string): string {
  try {
    const v = f();
    return typeof v === "string" ? v : String(v);
  } catch {
    return fallback;
  }
}
