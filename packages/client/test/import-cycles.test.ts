import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");

/** Every relative import of a module (type-only ones too: a cycle of types is still a tangle). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?from\s*"(\.[^"]+)"|import\s*\(?\s*"(\.[^"]+)"/g)) {
    const spec = (m[1] ?? m[2]) as string;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
  }
  return out;
}

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? modules(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** The import cycles among `files`, each as the list of modules around it. */
function cycles(files: string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, "open");
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === "open") found.push([...stack.slice(stack.indexOf(g)), g]);
      else if (!state.has(g) && graph.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

describe("the client package's modules", () => {
  it("import one another without cycles", () => {
    const files = modules(SRC);
    expect(files.length).toBeGreaterThan(20);
    // The scanner sees imports at all: the client imports its views.
    expect(importsOf(join(SRC, "client.ts"))).toContain(join(SRC, "views/direct-view.ts"));
    expect(cycles(files).map((c) => c.map((f) => relative(SRC, f)).join(" -> "))).toEqual([]);
  });

  it("views and results reach the client's session only through the view port", () => {
    const offenders = modules(SRC)
      .filter((f) => /\/(views|results)\//.test(f))
      .flatMap((f) => importsOf(f).filter((g) => g === join(SRC, "client.ts") || (g.includes("/session/") && !g.endsWith("view-port.ts"))).map((g) => `${relative(SRC, f)} -> ${relative(SRC, g)}`));
    expect(offenders).toEqual([]);
  });
});
