import { InvalidOptionError } from "@ptcluster/protocol";
import { describeValue, rejectUnknownKeys } from "../options.js";

/** Options a view applies to every call made through it (`view.with({...})`). */
export interface ViewOptions {
  /**
   * Values shipped by name with the function: `view.with({ scope: { threshold } }).apply((x) => x > threshold, 3)`.
   * They shadow engine globals for this function only.
   */
  scope?: Record<string, unknown>;
}

const VIEW_KEYS = new Set(["scope"]);
const IDENT = /^[A-Za-z_$][\w$]*$/;

export function validateViewOptions(o: ViewOptions): ViewOptions {
  if (typeof o !== "object" || o === null)
    throw new InvalidOptionError(`Expected view options to be an object, got ${describeValue(o)}`);
  rejectUnknownKeys(o, VIEW_KEYS, "view");
  if (o.scope !== undefined) {
    if (typeof o.scope !== "object" || o.scope === null || Array.isArray(o.scope)) {
      throw new InvalidOptionError(
        `Expected \`scope\` to be an object of names to values, got ${describeValue(o.scope)}`,
      );
    }
    for (const k of Object.keys(o.scope)) {
      if (!IDENT.test(k))
        throw new InvalidOptionError(`Expected \`scope\` keys to be JavaScript identifiers, got \`${k}\``);
    }
  }
  return o;
}
