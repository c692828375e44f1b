import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** Relative imports (type-only ones too) of every module under `dir`. */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const file = join(entry.parentPath, entry.name);
    const deps = [...readFileSync(file, "utf8").matchAll(/(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']/g)]
      .map((m) => resolve(dirname(file), (m[1] as string).replace(/\.js$/, ".ts")));
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, as module paths relative to `SRC`. */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const walk = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === "open") found.push([...stack.slice(stack.indexOf(m)), m].map((p) => relative(SRC, p)).join(" → "));
      else if (!state.has(m)) walk(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) if (!state.has(n)) walk(n);
  return found;
}

describe("the controller's modules", () => {
  it("import one another without cycles, each import resolving to a module of the package", () => {
    const graph = importGraph(SRC);
    expect(graph.size).toBeGreaterThan(20);
    for (const deps of graph.values()) for (const d of deps) expect(graph.has(d), d).toBe(true);
    expect(cycles(graph)).toEqual([]);
  });

  it("the cycle finder sees a cycle", () => {
    expect(cycles(new Map([[join(SRC, "a.ts"), [join(SRC, "b.ts")]], [join(SRC, "b.ts"), [join(SRC, "a.ts")]]]))).toEqual(["a.ts → b.ts → a.ts"]);
  });
});
