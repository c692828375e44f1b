import type { PipeStage } from "@ptcluster/protocol";

const KINDS = new Set(["map", "filter", "flatMap"]);
/** Stages of one pipeline at most. */
export const MAX_STAGES = 64;

const isInt = (v: unknown, min: number) => typeof v === "number" && Number.isInteger(v) && v >= min;

/**
 * What is wrong with a pipeline's stages as a client sent them, or undefined. The client checks
 * its options with friendlier messages; this keeps a client that does not from harming the controller.
 */
export function checkStages(stages: unknown, scopes: number): string | undefined {
  if (!Array.isArray(stages) || stages.length === 0) return "it has no stages";
  if (stages.length > MAX_STAGES) return `it has ${stages.length} stages, more than ${MAX_STAGES}`;
  if (scopes !== stages.length) return `it has ${stages.length} stages but ${scopes} scope parts`;
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i] as Partial<PipeStage> | null;
    const bad = (what: string) => `stage ${i}: ${what}`;
    if (typeof s !== "object" || s === null) return bad("not an object");
    if (!KINDS.has(s.kind as string)) return bad(`unknown kind ${String(s.kind)}`);
    if (typeof s.fn !== "string" || s.fn.length === 0) return bad("no function");
    if (s.src !== undefined && typeof s.src !== "string") return bad("a source that is not text");
    if (s.name !== undefined && typeof s.name !== "string") return bad("a name that is not text");
    if (s.scope !== undefined && (!Array.isArray(s.scope) || s.scope.some((n) => typeof n !== "string")))
      return bad("scope names that are not text");
    if (
      s.targets !== undefined &&
      (!Array.isArray(s.targets) || s.targets.length === 0 || !s.targets.every((t) => isInt(t, 0)))
    )
      return bad("targets must be a non-empty list of engine ids");
    if (s.concurrency !== undefined && !isInt(s.concurrency, 1)) return bad("concurrency must be a positive integer");
    if (s.timeout !== undefined && !(typeof s.timeout === "number" && s.timeout > 0))
      return bad("timeout must be positive");
    if (s.retries !== undefined && !isInt(s.retries, 0)) return bad("retries must be a non-negative integer");
  }
  return undefined;
}
