import { inspect } from "node:util";
import { encodeValue, encodedSize } from "@ptcluster/protocol";

/** Longest description `execute` returns for a completion value it cannot send. */
const MAX_DESCRIPTION = 2_000;

/**
 * The completion value of `execute` as it can travel: itself, or, when it cannot be sent (a
 * function, a class instance, too large), what the Node REPL would print for it, bounded. Code
 * that ran must never be reported as failed because of the value its last statement left.
 */
export function encodeCompletion(value: unknown, maxResultBytes: number): { body: Buffer; frames: Buffer[] } {
  try {
    const out = encodeValue(value, "result", undefined, { returned: true });
    if (encodedSize(out) <= maxResultBytes) return out;
  } catch {
    /* described below */
  }
  let text: string;
  try {
    text = inspect(value, { depth: 2, maxArrayLength: 20, maxStringLength: 200, breakLength: 100 });
  } catch {
    text = Object.prototype.toString.call(value); // a hostile Proxy or a throwing inspect hook
  }
  if (text.length > MAX_DESCRIPTION) text = `${text.slice(0, MAX_DESCRIPTION)}…`;
  return encodeValue(text, "result");
}
