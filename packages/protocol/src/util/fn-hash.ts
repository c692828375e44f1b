import { createHash } from "node:crypto";

/** Hash identifying a function's source, for the compile-once caches in the controller and engines. */
export function sourceHash(src: string): string {
  return createHash("sha1").update(src).digest("base64url").slice(0, 22);
}
