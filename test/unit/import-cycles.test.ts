import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const PACKAGES = resolve(dirname(fileURLToPath(import.meta.url)), "../../packages");

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

/** The cycles of an import graph (module -> the modules it imports), each as the modules around it. */
function cycles(graph: Map<string, string[]>): string[][] {
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
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe("modules of each package", () => {
  for (const pkg of ["protocol", "hub", "engine", "client", "cli"]) {
    it(`${pkg}: import one another without cycles, each import resolving to a module of the package`, () => {
      const src = join(PACKAGES, pkg, "src");
      const files = modules(src);
      expect(files.length).toBeGreaterThan(5);
      for (const f of files)
        for (const g of importsOf(f)) expect(files, `${relative(src, f)} imports ${relative(src, g)}`).toContain(g);
      const graph = new Map(files.map((f) => [f, importsOf(f)]));
      expect(cycles(graph).map((c) => c.map((f) => relative(src, f)).join(" -> "))).toEqual([]);
    });
  }

  it("the scanner sees imports, and the cycle finder sees a cycle", () => {
    const src = join(PACKAGES, "client", "src");
    expect(importsOf(join(src, "client.ts"))).toContain(join(src, "views/direct-view.ts"));
    expect(
      cycles(
        new Map([
          ["a", ["b"]],
          ["b", ["c"]],
          ["c", ["a"]],
          ["d", ["a"]],
        ]),
      ),
    ).toEqual([["a", "b", "c", "a"]]);
  });

  it("the client's views and results reach its session only through the view port", () => {
    const src = join(PACKAGES, "client", "src");
    const offenders = modules(src)
      .filter((f) => /\/(views|results)\//.test(f))
      .flatMap((f) =>
        importsOf(f)
          .filter((g) => g === join(src, "client.ts") || (g.includes("/session/") && !g.endsWith("view-port.ts")))
          .map((g) => `${relative(src, f)} -> ${relative(src, g)}`),
      );
    expect(offenders).toEqual([]);
  });
});
