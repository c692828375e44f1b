import type { SchedulerScheme } from "@ptcluster/protocol";
import type { EngineLoad } from "./view.js";

/** Chooses one engine among candidates that all have a free slot. */
export type Picker = (candidates: readonly EngineLoad[]) => EngineLoad;

const loadOf = (e: EngineLoad) => e.tasks.size / e.concurrency;

/**
 * The load-balancing schemes, as in ipyparallel: `leastload` (default: the engine with the lowest
 * load relative to its concurrency, least recently used on ties), `lru`, `random`, and `weighted`
 * (two random picks weighted towards idle engines, the less loaded wins).
 */
export function picker(scheme: SchedulerScheme, random: () => number = Math.random): Picker {
  switch (scheme) {
    case "leastload":
      return (c) =>
        c.reduce((best, e) => {
          const d = loadOf(e) - loadOf(best);
          return d < 0 || (d === 0 && e.lastAssigned < best.lastAssigned) ? e : best;
        });
    case "lru":
      return (c) => c.reduce((best, e) => (e.lastAssigned < best.lastAssigned ? e : best));
    case "random":
      return (c) => c[Math.floor(random() * c.length)] as EngineLoad;
    case "weighted": {
      const draw = (c: readonly EngineLoad[]) => {
        const weights = c.map((e) => 1 / (loadOf(e) + 1e-6));
        let r = random() * weights.reduce((a, b) => a + b, 0);
        for (let i = 0; i < c.length; i++) if ((r -= weights[i] as number) <= 0) return c[i] as EngineLoad;
        return c[c.length - 1] as EngineLoad;
      };
      return (c) => {
        const a = draw(c);
        const b = draw(c);
        return loadOf(a) <= loadOf(b) ? a : b;
      };
    }
  }
}

export const SCHEMES: readonly SchedulerScheme[] = ["leastload", "lru", "random", "weighted"];
