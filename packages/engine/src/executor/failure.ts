import type { FailureInfo } from "@ptcluster/protocol";

/**
 * Turns anything user code throws (an Error, a string, a cyclic object, a DOMException) into a plain,
 * serialisable description, so a failure can always be reported.
 */
/** Wraps what one item of a map chunk threw, with the item's index in the chunk. */
export class MapItemFailure {
  constructor(readonly item: number, readonly thrown: unknown) {}
}

export function toFailure(thrown: unknown): FailureInfo {
  if (thrown instanceof MapItemFailure) return { ...toFailure(thrown.thrown), item: thrown.item };
  if (thrown instanceof Error || isErrorLike(thrown)) {
    const e = thrown as Error & { code?: unknown };
    const name = safeString(() => e.name, "Error");
    const message = safeString(() => e.message, "");
    const info: FailureInfo = { name, message, stack: safeString(() => e.stack ?? `${name}: ${message}`, `${name}: ${message}`) };
    const code = safeString(() => (typeof e.code === "string" || typeof e.code === "number" ? String(e.code) : ""), "");
    if (code) info.code = code;
    if (name === "ReferenceError") {
      const m = /^(\S+) is not defined$/.exec(message);
      if (m?.[1]) info.undefinedName = m[1];
    }
    return info;
  }
  const message = safeString(() => (typeof thrown === "string" ? thrown : describe(thrown)), "<unprintable value>");
  return { name: "NonErrorThrown", message: `a non-Error value was thrown: ${message}`, stack: "" };
}

function isErrorLike(x: unknown): boolean {
  return typeof x === "object" && x !== null && typeof (x as { message?: unknown }).message === "string" && typeof (x as { name?: unknown }).name === "string";
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
