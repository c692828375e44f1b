import { beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { createHash, randomFillSync } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ResultTimeoutError } from "@ptcluster/client";
import { profilePaths } from "@ptcluster/protocol";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";

// Globals that push/execute define on the engines, declared for the type checker only (`engine` is typed by @ptcluster/client).
declare const k: string;
declare const a: number;
declare const b: string;
declare const part: unknown[];
declare const sc: Record<string, unknown>;
declare const big: Uint8Array;
declare const declaredLet: string;
declare const declaredConst: string;
declare const awaited: number;

const TSX_CLI = fileURLToPath(new URL("../node_modules/tsx/dist/cli.mjs", import.meta.url));
const CLIENT_ENTRY = pathToFileURL(fileURLToPath(new URL("../packages/client/dist/index.js", import.meta.url))).href;

/** Runs on an engine: waits until file `${prefix}-${engine.id}` exists (the test opens the gate), then returns the engine id. */
const gated = async (prefix: string) => {
  const fs = require("node:fs") as typeof import("node:fs");
  const until = Date.now() + 20_000;
  while (!fs.existsSync(`${prefix}-${engine.id}`)) {
    if (Date.now() > until) throw new Error(`gate ${prefix}-${engine.id} never opened`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return engine.id;
};

/** One value of every structured-clone type (small and frame-sized binaries, errors, cycles, shared references). */
function cloneSamples() {
  const cyclic: { name: string; self?: unknown } = { name: "cyclic" };
  cyclic.self = cyclic;
  const shared = { shared: true };
  const withCause = new TypeError("bad input", { cause: new Error("root cause") });
  const withProps = Object.assign(new RangeError("out of range"), { code: "E_RANGE", detail: { at: 3 } });
  const bigF64 = new Float64Array(600);
  for (let i = 0; i < bigF64.length; i++) bigF64[i] = i / 7;
  const backing = new ArrayBuffer(8 * 300);
  new Float64Array(backing).forEach((_, i, arr) => (arr[i] = i));
  const bigAB = new ArrayBuffer(4096);
  new Uint8Array(bigAB).forEach((_, i, arr) => (arr[i] = i & 0xff));
  const bigDV = new DataView(new ArrayBuffer(2048));
  bigDV.setFloat64(8, Math.PI);
  return {
    undef: undefined,
    nul: null,
    t: true,
    f: false,
    int: 42,
    float: -3.25,
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    ninf: Number.NEGATIVE_INFINITY,
    maxSafe: Number.MAX_SAFE_INTEGER,
    str: "héllo, 世界 🌍",
    empty: "",
    big: 2n ** 80n + 1n,
    negBig: -12345678901234567890n,
    date: new Date(1_700_000_000_123),
    invalidDate: new Date(Number.NaN),
    re: /a+(b|c)$/giu,
    map: new Map<unknown, unknown>([
      [1, "one"],
      ["two", { n: 2 }],
      [3n, [new Date(0)]],
    ]),
    set: new Set<unknown>([1, "a", 2n, null]),
    arr: [1, "two", [3, [4, { five: 5 }]]],
    obj: { nested: { deeper: { list: [new Set([new Map([["x", 1]])])] } } },
    ab: new ArrayBuffer(16),
    bigAB,
    dv: new DataView(new Uint8Array([1, 2, 3, 4]).buffer),
    bigDV,
    u8: new Uint8Array([0, 1, 255]),
    i8: new Int8Array([-128, 127]),
    u8c: new Uint8ClampedArray([0, 255]),
    i16: new Int16Array([-32768, 32767]),
    u16: new Uint16Array([65535]),
    i32: new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
    u32: new Uint32Array([2 ** 32 - 1]),
    f32: new Float32Array([1.5, Number.NaN]),
    f64: new Float64Array([Math.E, -0.5]),
    bi64: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    bu64: new BigUint64Array([2n ** 64n - 1n]),
    bigF64,
    offsetView: new Float64Array(backing, 8 * 10, 200),
    bigU8: new Uint8Array(5000).fill(7),
    err: new Error("plain"),
    typeErr: withCause,
    rangeErr: withProps,
    refErr: new ReferenceError("ref"),
    synErr: new SyntaxError("syn"),
    evalErr: new EvalError("eval"),
    uriErr: new URIError("uri"),
    cyclic,
    sharedRefs: [shared, shared],
  };
}

/** `Object.prototype.toString` tag of every entry (computed the same way here and on the engines). */
const typeTags = (o: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(o).map(([key, v]) => [
      key,
      `${Object.prototype.toString.call(v)}:${(v as { constructor?: { name?: string } } | null | undefined)?.constructor?.name ?? "-"}`,
    ]),
  );

function expectSamplesEqual(got: Record<string, unknown>, want: ReturnType<typeof cloneSamples>): void {
  expect(got).toEqual(want);
  expect(typeTags(got)).toEqual(typeTags(want));
  expect(Object.keys(got)).toContain("undef");
  const g = got as ReturnType<typeof cloneSamples>;
  expect(g.cyclic.self).toBe(g.cyclic);
  expect(g.sharedRefs[0]).toBe(g.sharedRefs[1]);
  expect(g.re.source).toBe(want.re.source);
  expect(g.re.flags).toBe(want.re.flags);
  expect(g.typeErr).toBeInstanceOf(TypeError);
  expect(g.typeErr.cause).toEqual(new Error("root cause"));
  expect(g.rangeErr).toBeInstanceOf(RangeError);
  expect((g.rangeErr as unknown as { code: string }).code).toBe("E_RANGE");
  expect(Number.isNaN(g.invalidDate.getTime())).toBe(true);
  expect(g.offsetView.length).toBe(200);
  expect(g.offsetView[0]).toBe(10);
  expect(g.bigDV.getFloat64(8)).toBe(Math.PI);
}

describe("DirectView and EngineView on a real 3-engine cluster", () => {
  const ctx = useCluster({ n: 3 });
  let ids: number[];
  beforeAll(() => {
    ids = ctx.rc.ids;
  });

  // Keep this test first: it is the first task the engines see after `ptcluster start` returned.
  it("the very first task after start already sees its engine's id", async () => {
    expect(ids).toEqual([0, 1, 2]);
    expect(await ctx.rc.view().apply(() => engine.id)).toEqual(ids);
  });

  it("apply and applySync run on every engine; rc.engine(i) gives a scalar", async () => {
    expect(ids).toEqual([0, 1, 2]);
    const dv = ctx.rc.view();
    const ar = dv.apply((x: number, s: string) => `${s}${x * 2}@${engine.id}`, 21, "v");
    expect(await ar).toEqual(ids.map((id) => `v42@${id}`));
    expect(await dv.applySync((x: number) => x + engine.id, 100)).toEqual(ids.map((id) => 100 + id));
    expect(await ctx.rc.view([2, 0]).applySync(() => engine.id)).toEqual([2, 0]);
    for (const id of ids) {
      const r = await ctx.rc.engine(id).apply((x: number) => ({ x, on: engine.id }), id * 10);
      expect(r).toEqual({ x: id * 10, on: id });
      expect(await ctx.rc.engine(id).applySync(() => engine.id)).toBe(id);
    }
    expect(await ctx.rc.engine(1).apply(async (x: number) => x + 1, 1)).toBe(2);
  });

  it("MPMD: rc.engine(0).apply(f) and rc.view([1]).apply(g) run at the same time, each with its own value", async () => {
    // Each task waits for the other's file: if they did not run at the same time, both would time out.
    const rendezvous = join(ctx.dir, "mpmd");
    const f = async (dir: string) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${dir}-f`, "");
      const until = Date.now() + 15_000;
      while (!fs.existsSync(`${dir}-g`)) {
        if (Date.now() > until) throw new Error("g never started");
        await new Promise((r) => setTimeout(r, 5));
      }
      return `f on ${engine.id}`;
    };
    const g = async (dir: string, n: number) => {
      const fs = require("node:fs") as typeof import("node:fs");
      fs.writeFileSync(`${dir}-g`, "");
      const until = Date.now() + 15_000;
      while (!fs.existsSync(`${dir}-f`)) {
        if (Date.now() > until) throw new Error("f never started");
        await new Promise((r) => setTimeout(r, 5));
      }
      return { g: engine.id, n };
    };
    const arF = ctx.rc.engine(0).apply(f, rendezvous);
    const arG = ctx.rc.view([1]).apply(g, rendezvous, 7);
    const [rf, rg] = await Promise.all([arF, arG]);
    expect(rf).toBe("f on 0");
    expect(rg).toEqual([{ g: 1, n: 7 }]);
  });

  it("map partitions statically and keeps input order (uneven blocks, more engines than items, empty input)", async () => {
    const dv = ctx.rc.view();
    const items = [10, 11, 12, 13, 14, 15, 16];
    const r = await dv.map((x: number) => [x * 2, engine.id] as const, items);
    expect(r.map((p) => p[0])).toEqual(items.map((x) => x * 2));
    // Contiguous blocks of 3, 2, 2 on engines 0, 1, 2.
    expect(r.map((p) => p[1])).toEqual([0, 0, 0, 1, 1, 2, 2]);

    const few = await dv.map((x: string) => [x.toUpperCase(), engine.id] as const, ["a", "b"]);
    expect(few.map((p) => p[0])).toEqual(["A", "B"]);
    expect(new Set(few.map((p) => p[1])).size).toBe(2);

    expect(await dv.map((x: number) => x, [])).toEqual([]);
    expect(await ctx.rc.view([2, 1]).map((x: number) => [x, engine.id], [1, 2, 3])).toEqual([
      [1, 2],
      [2, 2],
      [3, 1],
    ]);
    expect(await ctx.rc.engine(1).map((x: number) => x * x, [1, 2, 3, 4])).toEqual([1, 4, 9, 16]);
    // Async functions are awaited per item.
    expect(await dv.map(async (x: number) => x + 1, [1, 2, 3, 4, 5])).toEqual([2, 3, 4, 5, 6]);
  });

  it("starmap: map with two lists calls fn(xs[i], ys[i])", async () => {
    const r = await ctx.rc.view().map((n: number, s: string) => s.repeat(n), [1, 2, 3, 4], ["a", "b", "c", "d"]);
    expect(r).toEqual(["a", "bb", "ccc", "dddd"]);
    const it2 = await ctx.rc.view().map((x: number, y: number) => x * y, new Set([2, 3, 4]), [10, 100, 1000]);
    expect(it2).toEqual([20, 300, 4000]);
  });

  it("execute, push and pull (one name and a list), on a view and on one engine", async () => {
    const dv = ctx.rc.view();
    await dv.push({ a: 41, b: "bee" });
    expect(await dv.pull("a")).toEqual([41, 41, 41]);
    expect(await dv.pull(["a", "b"])).toEqual([
      [41, "bee"],
      [41, "bee"],
      [41, "bee"],
    ]);
    expect(await dv.execute("globalThis.c = a + 1; c * 2")).toEqual([84, 84, 84]);
    expect(await dv.pull("c")).toEqual([42, 42, 42]);
    expect(await dv.apply(() => `${a}${b}`)).toEqual(["41bee", "41bee", "41bee"]);

    const e1 = ctx.rc.engine(1);
    await e1.push({ a: 1 });
    expect(await e1.pull("a")).toBe(1);
    expect(await e1.pull(["a", "b"])).toEqual([1, "bee"]);
    expect(await e1.execute("a + 100")).toBe(101);
    expect(await dv.pull("a")).toEqual([41, 1, 41]);
    expect(await dv.execute("var t = 5; t")).toEqual([5, 5, 5]);
    expect(await dv.pull("t")).toEqual([5, 5, 5]);
  });

  it("names that execute declares with let and const can be pulled, as functions already see them", async () => {
    const e2 = ctx.rc.engine(2);
    expect(await e2.execute("let declaredLet = 'L'; const declaredConst = 'C'; declaredLet + declaredConst")).toBe(
      "LC",
    );
    // Shipped functions resolve them (same global scope)…
    expect(await e2.apply(() => `${declaredLet}${declaredConst}`)).toBe("LC");
    // …so pull must too.
    expect(await e2.pull(["declaredLet", "declaredConst"])).toEqual(["L", "C"]);
  });

  it("execute with top-level await returns its completion value and leaves its declarations as globals", async () => {
    const dv = ctx.rc.view();
    expect(await dv.execute("await Promise.resolve(7)")).toEqual([7, 7, 7]);
    await dv.execute("var awaited = await Promise.resolve(8)");
    expect(await dv.pull("awaited")).toEqual([8, 8, 8]);
    expect(await dv.apply(() => awaited)).toEqual([8, 8, 8]);
  });

  it("scatter and gather an array and a Float64Array", async () => {
    const dv = ctx.rc.view();
    const data = Array.from({ length: 10 }, (_, i) => ({ i }));
    await dv.scatter("part", data);
    expect(await dv.apply(() => part.length)).toEqual([4, 3, 3]);
    expect(await dv.apply(() => part.map((p) => (p as { i: number }).i))).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    expect(await dv.gather("part")).toEqual(data);

    const f64 = new Float64Array(100_001);
    for (let i = 0; i < f64.length; i++) f64[i] = Math.sin(i);
    await dv.scatter("part", f64);
    expect(await dv.apply(() => [Object.prototype.toString.call(part), part.length])).toEqual([
      ["[object Float64Array]", 33_334],
      ["[object Float64Array]", 33_334],
      ["[object Float64Array]", 33_333],
    ]);
    const back = await dv.gather("part");
    expect(back).toBeInstanceOf(Float64Array);
    expect(
      Buffer.from(
        (back as Float64Array).buffer,
        (back as Float64Array).byteOffset,
        (back as Float64Array).byteLength,
      ).equals(Buffer.from(f64.buffer)),
    ).toBe(true);

    await ctx.rc.view([2, 0]).scatter("part", [1, 2, 3]);
    expect(await ctx.rc.view([2, 0]).gather("part")).toEqual([1, 2, 3]);
    expect(await ctx.rc.engine(2).pull("part")).toEqual([1, 2]);
  });

  it("view.with({ scope: { k } }) shadows an engine global for that view only", async () => {
    const dv = ctx.rc.view();
    await dv.push({ k: "global" });
    const scoped = dv.with({ scope: { k: "scoped" } });
    expect(await scoped.apply(() => k)).toEqual(["scoped", "scoped", "scoped"]);
    expect(await scoped.map((x: number) => `${k}${x}`, [1, 2, 3])).toEqual(["scoped1", "scoped2", "scoped3"]);
    expect(
      await ctx.rc
        .engine(0)
        .with({ scope: { k: "one" } })
        .apply(() => k),
    ).toBe("one");
    // The same function without scope sees the global again: nothing leaked into the namespace.
    expect(await dv.apply(() => k)).toEqual(["global", "global", "global"]);
    expect(await dv.pull("k")).toEqual(["global", "global", "global"]);
  });

  it("engine.id, engine.pid and engine.host are visible inside tasks", async () => {
    const where = await ctx.rc
      .view()
      .apply(() => ({ id: engine.id, pid: engine.pid, host: engine.host, procPid: process.pid }));
    expect(where.map((w) => w.id)).toEqual(ids);
    expect(where.map((w) => w.pid).sort()).toEqual([...ctx.cluster.enginePids].sort());
    for (const w of where) {
      expect(w.pid).toBe(w.procPid);
      expect(w.host).toBe(hostname());
    }
  });

  it("console.log / console.error of a task come back in metadata[i].stdout / stderr and nowhere else", async () => {
    const token = `tok${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
    const ar = ctx.rc.view().apply((t: string) => {
      console.log(t, "out", engine.id, { n: 1 });
      console.error(t, "err", engine.id);
      console.info(t, "info", engine.id);
      console.warn(t, "warn", engine.id);
      return engine.id;
    }, token);
    expect(await ar).toEqual(ids);
    ids.forEach((id, i) => {
      const m = ar.metadata[i]!;
      expect(m.engineId).toBe(id);
      expect(m.stdout).toBe(`${token} out ${id} { n: 1 }\n${token} info ${id}\n`);
      expect(m.stderr).toBe(`${token} err ${id}\n${token} warn ${id}\n`);
      expect(m.status).toBe("ok");
      expect(m.started).toBeInstanceOf(Date);
      expect(m.completed!.getTime()).toBeGreaterThanOrEqual(m.started!.getTime());
    });
    expect(ar.stdout).toEqual(ar.metadata.map((m) => m.stdout));
    // Output of one task is not attached to the next one.
    const quiet = ctx.rc.view().apply(() => 0);
    await quiet;
    expect(quiet.metadata.map((m) => m.stdout + m.stderr)).toEqual(["", "", ""]);
    // Not in any engine's own stdout/stderr or log files either.
    const logDir = profilePaths(ctx.cluster.profile, ctx.cluster.clusterId).logDir;
    for (const f of readdirSync(logDir)) expect(readFileSync(join(logDir, f), "utf8"), f).not.toContain(token);
  });

  it("AsyncResult: get(timeout), ready(), successful(), progress and wait()", async () => {
    const gate = join(ctx.dir, "gate-ar");
    const ar = ctx.rc.view([0, 1]).apply(gated, gate);
    expect(ar.ready()).toBe(false);
    expect(ar.successful()).toBeUndefined();
    expect(ar.progress).toBe(0);
    expect(ar.total).toBe(2);
    const late = await ar.get(50).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(late).toBeInstanceOf(ResultTimeoutError);
    expect((late as ResultTimeoutError).code).toBe("ERR_PTC_RESULT_TIMEOUT");
    expect(await ar.wait(50)).toBe(false);
    expect(ar.ready()).toBe(false);

    writeFileSync(`${gate}-0`, "");
    await waitFor(() => ar.progress === 1, { what: "the first task to finish" });
    expect(ar.ready()).toBe(false);
    expect(ar.successful()).toBeUndefined();
    expect(ar.metadata.map((m) => m.status)).toEqual(["ok", "pending"]);

    writeFileSync(`${gate}-1`, "");
    expect(await ar.wait()).toBe(true);
    expect(ar.ready()).toBe(true);
    expect(ar.successful()).toBe(true);
    expect(ar.progress).toBe(2);
    expect(await ar.get(1)).toEqual([0, 1]);
    expect(ar.elapsed).toBeGreaterThanOrEqual(0);

    const bad = ctx.rc.engine(2).apply(() => {
      throw new Error("nope");
    });
    expect(await bad.wait(10_000)).toBe(true);
    expect(bad.ready()).toBe(true);
    expect(bad.successful()).toBe(false);
    expect(bad.progress).toBe(1);
    await expect(bad.get()).rejects.toThrow(/nope/);
  });

  it("functions with nested named functions run: this file's transform, a tsx-compiled script, and __name(...) source", async () => {
    // 1. Compiled by vitest's transform (which may or may not emit __name).
    const local = (x: number) => {
      function square(y: number) {
        return y * y;
      }
      const twice = function twice(y: number) {
        return y * 2;
      };
      return { v: square(x) + twice(x), names: [square.name, twice.name] };
    };
    expect(await ctx.rc.view().apply(local, 3)).toEqual(Array(3).fill({ v: 15, names: ["square", "twice"] }));

    // 2. Source exactly as esbuild/tsx emits it: __name(...) calls, built with `new Function` so no transform touches it.
    const built = new Function(
      'return function outer(x) { function inner(y) { return y * 3; } __name(inner, "inner"); ' +
        'const helper = __name(function helper(z) { return z + 1; }, "helper"); return { v: helper(inner(x)), names: [inner.name, helper.name] }; }',
    )() as (x: number) => { v: number; names: string[] };
    expect(built.toString()).toContain("__name(");
    expect(await ctx.rc.engine(0).apply(built, 5)).toEqual({ v: 16, names: ["inner", "helper"] });
    expect(await ctx.rc.view().map(built, [1, 2, 3])).toEqual(
      [1, 2, 3].map((x) => ({ v: x * 3 + 1, names: ["inner", "helper"] })),
    );

    // 3. A real tsx script shipping its own function.
    const script = join(ctx.dir, "nested-names.mts");
    writeFileSync(
      script,
      `import { connect } from ${JSON.stringify(CLIENT_ENTRY)};
function outer(x: number): { v: number; names: string[] } {
  function inner(y: number): number { return y * 2; }
  const helper = function helper(z: number): number { return z + 1; };
  const arrow = (w: number) => { function deep(q: number) { return q; } return deep(w); };
  return { v: helper(inner(x)) + arrow(0), names: [inner.name, helper.name] };
}
const rc = await connect({ profile: ${JSON.stringify(ctx.cluster.profile)}, clusterId: ${JSON.stringify(ctx.cluster.clusterId)} });
try {
  const results = await rc.view().apply(outer, 20);
  process.stdout.write(JSON.stringify({ src: outer.toString(), results }) + "\\n");
} finally {
  await rc.close();
}
`,
    );
    const r = await execa(process.execPath, [TSX_CLI, script], {
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      timeout: 20_000,
    });
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { src: string; results: unknown[] };
    expect(out.src).toContain("__name(");
    expect(out.results).toEqual(Array(3).fill({ v: 41, names: ["inner", "helper"] }));
  });

  it("values of every structured-clone type round trip through push/pull", async () => {
    const want = cloneSamples();
    const dv = ctx.rc.view();
    await dv.push({ sc: cloneSamples() });
    const pulled = await dv.pull("sc");
    expect(pulled).toHaveLength(3);
    for (const got of pulled) expectSamplesEqual(got as Record<string, unknown>, want);
    // The engines hold real instances of each type, not look-alikes.
    const tags = await dv.apply(() => {
      const tag = (o: Record<string, unknown>) =>
        Object.fromEntries(
          Object.entries(o).map(([key, v]) => [
            key,
            `${Object.prototype.toString.call(v)}:${(v as { constructor?: { name?: string } } | null | undefined)?.constructor?.name ?? "-"}`,
          ]),
        );
      return tag(sc);
    });
    for (const t of tags) expect(t).toEqual(typeTags(want));
  });

  it("values of every structured-clone type round trip as arguments and results", async () => {
    const want = cloneSamples();
    const echoed = await ctx.rc.engine(1).apply((v: ReturnType<typeof cloneSamples>) => v, cloneSamples());
    expectSamplesEqual(echoed, want);
    const engineTags = await ctx.rc.engine(2).apply((v: Record<string, unknown>) => {
      return Object.fromEntries(
        Object.entries(v).map(([key, x]) => [
          key,
          `${Object.prototype.toString.call(x)}:${(x as { constructor?: { name?: string } } | null | undefined)?.constructor?.name ?? "-"}`,
        ]),
      );
    }, cloneSamples());
    expect(engineTags).toEqual(typeTags(want));
    // Results built on the engine, not merely echoed.
    const made = await ctx.rc.engine(0).apply(() => ({
      map: new Map([["k", new Set([1n])]]),
      date: new Date(5),
      re: /x/y,
      err: new SyntaxError("made remotely"),
      f32: new Float32Array(1000).fill(0.5),
      ab: new ArrayBuffer(3),
    }));
    expect(made.map.get("k")).toEqual(new Set([1n]));
    expect(made.date).toEqual(new Date(5));
    expect(made.re.flags).toBe("y");
    expect(made.err).toBeInstanceOf(SyntaxError);
    expect(made.err.message).toBe("made remotely");
    expect(made.f32).toEqual(new Float32Array(1000).fill(0.5));
    expect(made.ab).toBeInstanceOf(ArrayBuffer);
    expect(made.ab.byteLength).toBe(3);
  });

  it("-0 and primitive wrapper objects (Number, String, Boolean, BigInt) round trip as structured clone keeps them", async () => {
    const values = { negZero: -0, num: Object(3), str: Object("s"), bool: Object(false), bigint: Object(5n) } as Record<
      string,
      unknown
    >;
    const got = (await ctx.rc.engine(0).apply((v: Record<string, unknown>) => v, values)) as Record<string, unknown>;
    const clone = structuredClone(values); // what structured clone does, locally
    const summary = (o: Record<string, unknown>) => ({
      negZeroIsNegative: Object.is(o["negZero"], -0),
      tags: typeTags(o),
      primitives: ["num", "str", "bool", "bigint"].map((key) =>
        (o[key] as { valueOf(): unknown } | undefined)?.valueOf(),
      ),
    });
    expect(summary(clone)).toEqual({
      negZeroIsNegative: true,
      tags: typeTags(values),
      primitives: [3, "s", false, 5n],
    });
    expect(summary(got)).toEqual(summary(clone));
  });

  it("a 50 MiB Uint8Array round trips byte-exact through push and pull", async () => {
    const data = new Uint8Array(50 * 1024 * 1024);
    for (let off = 0; off < data.length; off += 65_536) randomFillSync(data, off, Math.min(65_536, data.length - off));
    const digest = createHash("sha256").update(data).digest("hex");
    const e0 = ctx.rc.engine(0);
    await e0.push({ big: data });
    const remote = await e0.apply(() => ({
      type: Object.prototype.toString.call(big),
      length: big.length,
      sha: (require("node:crypto") as typeof import("node:crypto")).createHash("sha256").update(big).digest("hex"),
    }));
    expect(remote).toEqual({ type: "[object Uint8Array]", length: data.length, sha: digest });
    const back = (await e0.pull("big")) as Uint8Array;
    expect(back).toBeInstanceOf(Uint8Array);
    expect(back.length).toBe(data.length);
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(data.buffer))).toBe(true);
    await e0.push({ big: null });
  });
});
