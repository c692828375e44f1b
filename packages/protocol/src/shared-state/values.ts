import { decodeValue, encodeValue } from "../codec/value-codec.js";
import type { Part } from "../part.js";
import type { SharedArgs, WaitOptions } from "./wire.js";

/** A value for the controller to store: encoded here, never decoded there (but by `update`). */
export function pack(value: unknown, root = "value"): Part {
  return encodeValue(value, root);
}

export function unpack<T>(p: Part | undefined): T {
  return (p === undefined ? undefined : decodeValue(p.body, p.frames)) as T;
}

/** The timeout of wait options as call arguments (checked here, so a bad one fails before it travels). */
export function waitArgs(o: WaitOptions | undefined, args: SharedArgs = {}): SharedArgs {
  const t = o?.timeout;
  if (t !== undefined) {
    if (typeof t !== "number" || !(t >= 0))
      throw new TypeError(`Expected \`timeout\` to be milliseconds (0 or more), got ${String(t)}.`);
    args.timeout = t;
  }
  return args;
}
