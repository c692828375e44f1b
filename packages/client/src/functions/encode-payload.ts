import { assertCloneable, encodeValue, mergeChecks, type CloneOptions, type Part } from "@ptcluster/protocol";
import { shipValueFunction } from "./ship.js";

/** Functions inside values sent to engines travel as source (see {@link shipValueFunction}). */
const SEND: CloneOptions = { shipFunction: shipValueFunction };

/**
 * Encodes the payload of an `apply` or `map` task, `[args]` or `[args, scope]`, each checked
 * under its own name so an error's path reads `args[0].cb` or `scope.k`.
 */
export function encodeCallPayload(args: unknown, scope: Record<string, unknown> | undefined, root: string): Part {
  const a = assertCloneable(args, root, SEND);
  const check = scope ? mergeChecks(a, assertCloneable(scope, "scope", SEND)) : a;
  const { body, frames } = encodeValue(scope ? [args, scope] : [args], root, check);
  return { body, frames };
}

/** Checks a `scope` once, before the chunks of a map encode it again and again. */
export function checkScope(scope: Record<string, unknown> | undefined): void {
  if (scope) assertCloneable(scope, "scope", SEND);
}

/** Encodes the names and values of a `push` (functions included). */
export function encodeNamespace(namespace: Record<string, unknown>): Part {
  const { body, frames } = encodeValue(namespace, "namespace", undefined, SEND);
  return { body, frames };
}
