import { beforeAll, describe, expect, it } from "vitest";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ClientClosedError,
  CompositeError,
  ConnectionFileError,
  EngineLostError,
  TaskCrashedError,
  InvalidOptionError,
  NoClusterError,
  PtclusterError,
  RemoteError,
  SerializationError,
  UndefinedNameError,
  UnknownEngineError,
  connect,
} from "@ptcluster/client";
import { useCluster } from "./helpers/cluster.js";
import { waitFor } from "./helpers/wait.js";
import { failure } from "./helpers/lb.js";

declare const notDefinedAnywhere: number;
declare const sentMarker: unknown;

/** The rejection (or synchronous throw) of `f`, which must fail. */

describe("errors: classes with stable codes and actionable messages", () => {
  const ctx = useCluster({ n: 3 });
  let ids: number[];
  beforeAll(() => {
    ids = ctx.rc.ids;
  });

  it("connect() with no cluster → NoClusterError (ERR_PTC_NO_CLUSTER) telling to run `ptcluster start`", async () => {
    const err = await failure(() => connect({ profile: "nothing-here" }));
    expect(err).toBeInstanceOf(NoClusterError);
    expect(err).toBeInstanceOf(ConnectionFileError);
    expect(err).toBeInstanceOf(PtclusterError);
    const e = err as NoClusterError;
    expect(e.code).toBe("ERR_PTC_NO_CLUSTER");
    expect(e.name).toBe("NoClusterError");
    expect(e.profile).toBe("nothing-here");
    expect(e.message).toContain("ptcluster start");
    expect(e.message).toContain("--profile nothing-here");
    expect(e.message).toContain("nothing-here");
  });

  it("an unreadable or malformed connection file → ConnectionFileError naming the file", async () => {
    // A directory where the file should be (readable even as root, unlike chmod 000).
    const asDir = join(ctx.dir, "conn-dir.json");
    mkdirSync(asDir, { mode: 0o700 });
    const e1 = await failure(() => connect({ file: asDir }));
    expect(e1).toBeInstanceOf(ConnectionFileError);
    expect(e1).not.toBeInstanceOf(NoClusterError);
    expect((e1 as ConnectionFileError).code).toBe("ERR_PTC_CONNECTION_FILE");
    expect((e1 as ConnectionFileError).file).toBe(asDir);
    expect((e1 as Error).message).toContain(asDir);

    const badJson = join(ctx.dir, "bad.json");
    writeFileSync(badJson, "{ not json", { mode: 0o600 });
    const e2 = await failure(() => connect({ file: badJson }));
    expect(e2).toBeInstanceOf(ConnectionFileError);
    expect((e2 as ConnectionFileError).code).toBe("ERR_PTC_CONNECTION_FILE");
    expect((e2 as Error).message).toContain(badJson);
    expect((e2 as Error).message).toMatch(/not valid JSON/);

    const unusable = join(ctx.dir, "unusable.json");
    writeFileSync(unusable, JSON.stringify({ kind: "engine", host: "127.0.0.1" }), { mode: 0o600 });
    const e3 = await failure(() => connect({ file: unusable }));
    expect(e3).toBeInstanceOf(ConnectionFileError);
    expect((e3 as Error).message).toMatch(/engine file, expected a client file/);

    const open = join(ctx.dir, "open.json");
    writeFileSync(open, "{}", { mode: 0o644 });
    chmodSync(open, 0o644);
    const e4 = await failure(() => connect({ file: open }));
    expect(e4).toBeInstanceOf(ConnectionFileError);
    expect((e4 as ConnectionFileError).code).toBe("ERR_PTC_CONNECTION_FILE_MODE");
    expect((e4 as Error).message).toContain(`chmod 600 ${open}`);
  });

  it("invalid options → InvalidOptionError quoting the received value", async () => {
    const e1 = await failure(() => connect({ timeout: -1 }));
    expect(e1).toBeInstanceOf(InvalidOptionError);
    expect((e1 as InvalidOptionError).code).toBe("ERR_PTC_INVALID_OPTION");
    expect((e1 as Error).message).toContain("timeout");
    expect((e1 as Error).message).toContain("-1");

    const e2 = await failure(() => ctx.rc.view().with({ bogus: 1 } as never));
    expect(e2).toBeInstanceOf(InvalidOptionError);
    expect((e2 as Error).message).toContain("bogus");

    const e3 = await failure(() => ctx.rc.view().with({ scope: 5 } as never));
    expect(e3).toBeInstanceOf(InvalidOptionError);
    expect((e3 as Error).message).toContain("5");

    const e4 = await failure(() => connect({ profile: 7 } as never));
    expect(e4).toBeInstanceOf(InvalidOptionError);
    expect((e4 as Error).message).toContain("7");

    // A lone engine id is not "every engine" (0 is falsy): the message names both ways to mean it.
    const e5 = await failure(() => ctx.rc.view(0 as never));
    expect(e5).toBeInstanceOf(InvalidOptionError);
    expect((e5 as Error).message).toContain("rc.view([0])");
    expect((e5 as Error).message).toContain("rc.engine(0)");
    const e6 = await failure(() => ctx.rc.loadBalancedView(["1"] as never));
    expect(e6).toBeInstanceOf(InvalidOptionError);
    expect((e6 as Error).message).toContain('["1"]');
  });

  it("an engine's exception → RemoteError on rc.engine(i), remote stack kept apart from the local one", async () => {
    const err = await failure(() =>
      ctx.rc.engine(1).apply((msg: string) => {
        function deepInside(): never {
          throw new TypeError(`bad thing: ${msg}`);
        }
        return deepInside();
      }, "xyz"),
    );
    expect(err).toBeInstanceOf(RemoteError);
    const e = err as RemoteError;
    expect(e.code).toBe("ERR_PTC_REMOTE");
    expect(e.name).toBe("RemoteError");
    expect(e.engineId).toBe(1);
    expect(e.remoteName).toBe("TypeError");
    expect(e.remoteMessage).toBe("bad thing: xyz");
    expect(e.message).toContain("TypeError");
    expect(e.message).toContain("bad thing: xyz");
    expect(e.message).toContain("engine 1");
    expect(e.remoteStack).toContain("TypeError: bad thing: xyz");
    expect(e.remoteStack).toContain("deepInside");
    expect(e.remoteStack).toMatch(/ptcluster-task-/);
    expect(e.stack).toBeDefined();
    expect(e.stack).not.toContain("deepInside");
    expect(e.stack).not.toMatch(/ptcluster-task-/);
  });

  it("failures on several engines of a DirectView → CompositeError (ERR_PTC_COMPOSITE) with one error per failed engine", async () => {
    const lastId = ids[ids.length - 1]!;
    // Engines are told apart by pid (engine.id of the first tasks after start is covered in direct-view.test.ts).
    const pidOf = (id: number) => ctx.rc.engineInfo(id)!.pid;
    const err = await failure(() =>
      ctx.rc.view().apply((okPid: number) => {
        if (process.pid !== okPid) throw new RangeError(`failed on pid ${process.pid}`);
        return "fine";
      }, pidOf(lastId)),
    );
    expect(err).toBeInstanceOf(CompositeError);
    const c = err as CompositeError;
    expect(c.code).toBe("ERR_PTC_COMPOSITE");
    expect(c.errors).toHaveLength(ids.length - 1);
    const failedIds = ids.filter((id) => id !== lastId);
    expect(c.errors.map((e) => (e as RemoteError).engineId).sort()).toEqual(failedIds);
    for (const e of c.errors) {
      expect(e).toBeInstanceOf(RemoteError);
      expect((e as RemoteError).remoteName).toBe("RangeError");
      expect((e as RemoteError).remoteMessage).toBe(`failed on pid ${pidOf((e as RemoteError).engineId)}`);
    }
    expect(c.results[ids.indexOf(lastId)]).toBe("fine");
    expect(c.message).toContain(`${ids.length - 1} of ${ids.length} engines failed`);
    for (const id of failedIds)
      expect(c.message).toContain(`[${id}] RangeError on engine ${id}: failed on pid ${pidOf(id)}`);
  });

  it("a thrown non-Error (string, cyclic object, undefined) still yields a RemoteError", async () => {
    const s = await failure(() =>
      ctx.rc.engine(0).apply(() => {
        throw "just a string";
      }),
    );
    expect(s).toBeInstanceOf(RemoteError);
    expect((s as RemoteError).remoteMessage).toContain("just a string");

    const c = await failure(() =>
      ctx.rc.engine(0).apply(() => {
        const o: { me?: unknown; label: string } = { label: "cyclic" };
        o.me = o;
        throw o;
      }),
    );
    expect(c).toBeInstanceOf(RemoteError);
    expect((c as RemoteError).engineId).toBe(0);
    expect(typeof (c as RemoteError).remoteMessage).toBe("string");

    const u = await failure(() =>
      ctx.rc.engine(0).apply(() => {
        throw undefined;
      }),
    );
    expect(u).toBeInstanceOf(RemoteError);

    const p = await failure(() => ctx.rc.engine(0).apply(async () => Promise.reject(42)));
    expect(p).toBeInstanceOf(RemoteError);
    expect((p as RemoteError).remoteMessage).toContain("42");
  });

  it("an undefined free name → UndefinedNameError (ERR_PTC_UNDEFINED_NAME) naming it and the three ways to pass it", async () => {
    const err = await failure(() => ctx.rc.engine(2).apply(() => notDefinedAnywhere + 1));
    expect(err).toBeInstanceOf(UndefinedNameError);
    expect(err).toBeInstanceOf(RemoteError);
    const e = err as UndefinedNameError;
    expect(e.code).toBe("ERR_PTC_UNDEFINED_NAME");
    expect(e.undefinedName).toBe("notDefinedAnywhere");
    expect(e.engineId).toBe(2);
    expect(e.message).toContain("`notDefinedAnywhere`");
    expect(e.message).toMatch(/argument/);
    expect(e.message).toMatch(/scope/);
    expect(e.message).toMatch(/push/);

    const onView = await failure(() => ctx.rc.view().apply(() => notDefinedAnywhere));
    expect(onView).toBeInstanceOf(CompositeError);
    expect((onView as CompositeError).errors).toHaveLength(ids.length);
    for (const x of (onView as CompositeError).errors) expect(x).toBeInstanceOf(UndefinedNameError);

    // Pushing it makes the same function work: the advice in the message is right.
    await ctx.rc.engine(2).push({ notDefinedAnywhere: 1 });
    expect(await ctx.rc.engine(2).apply(() => notDefinedAnywhere + 1)).toBe(2);
  });

  it("an argument that cannot be sent → SerializationError (ERR_PTC_UNSERIALIZABLE) with its path, before anything is sent", async () => {
    // A built-in function has no source to travel as (functions with source do travel: shipping.test.ts).
    const cb = Math.random;
    let thrown: unknown;
    try {
      // Synchronous: nothing is queued.
      void ctx.rc.view().apply(
        (o: { cb: () => number }) => {
          (globalThis as Record<string, unknown>)["sentMarker"] = o;
        },
        { cb },
      );
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SerializationError);
    const e = thrown as SerializationError;
    expect(e.code).toBe("ERR_PTC_UNSERIALIZABLE");
    // Nothing reached the engines.
    expect(await ctx.rc.view().execute("typeof sentMarker")).toEqual(ids.map(() => "undefined"));
    expect(await ctx.rc.view().apply(() => typeof sentMarker)).toEqual(ids.map(() => "undefined"));
    expect(e.path).toBe("args[0].cb");
    expect(e.message).toContain("args[0].cb");

    let t2: unknown;
    try {
      void ctx.rc.engine(0).apply((x: unknown) => x, Symbol("s"));
    } catch (err) {
      t2 = err;
    }
    expect(t2).toBeInstanceOf(SerializationError);
    expect((t2 as SerializationError).path).toBe("args[0]");
  });

  it("a result that cannot be sent (function, symbol) → SerializationError naming its path and engine, not a RemoteError", async () => {
    const f = await failure(() => ctx.rc.engine(0).apply(() => ({ ok: 1, handler: () => 2 })));
    expect(f).toBeInstanceOf(SerializationError);
    expect(f).not.toBeInstanceOf(RemoteError);
    expect((f as SerializationError).code).toBe("ERR_PTC_UNSERIALIZABLE");
    expect((f as SerializationError).path).toBe("result.handler");
    expect((f as SerializationError).engineId).toBe(0);
    expect((f as SerializationError).message).toContain("result.handler");
    expect((f as SerializationError).message).toContain("`handler`");

    const s = await failure(() => ctx.rc.engine(1).apply(() => [1, Symbol("nope")]));
    expect(s).toBeInstanceOf(SerializationError);
    expect((s as SerializationError).code).toBe("ERR_PTC_UNSERIALIZABLE");
    expect((s as SerializationError).path).toBe("result[1]");
    expect((s as SerializationError).message).toContain("result[1]");

    // The engine is fine afterwards.
    expect(await ctx.rc.engine(0).apply(() => "still here")).toBe("still here");
  });

  it("rc.engine(99) → UnknownEngineError (ERR_PTC_UNKNOWN_ENGINE) listing the registered ids", async () => {
    const err = await failure(() => ctx.rc.engine(99).apply(() => 1));
    expect(err).toBeInstanceOf(UnknownEngineError);
    const e = err as UnknownEngineError;
    expect(e.code).toBe("ERR_PTC_UNKNOWN_ENGINE");
    expect(e.engineId).toBe(99);
    expect(e.message).toContain("99");
    expect(e.message).toContain(`[${ids.join(", ")}]`);
  });

  it("rc.close() with a pending task → ClientClosedError; a closed client's apply throws ClientClosedError", async () => {
    const rc2 = await ctx.cluster.connect();
    const gate = join(ctx.dir, "close-gate");
    const started = join(ctx.dir, "close-started");
    const pending = rc2.engine(0).apply(
      async (g: string, s: string) => {
        const fs = require("node:fs") as typeof import("node:fs");
        fs.writeFileSync(s, "");
        const until = Date.now() + 20_000;
        while (!fs.existsSync(g) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
        return "finished";
      },
      gate,
      started,
    );
    try {
      await waitFor(() => existsSync(started), { what: "the task to start" });
      await rc2.close();
      const err = await failure(() => pending);
      expect(err).toBeInstanceOf(ClientClosedError);
      expect((err as ClientClosedError).code).toBe("ERR_PTC_CLIENT_CLOSED");
    } finally {
      // Let the engine finish the orphaned task.
      writeFileSync(gate, "");
      await rc2.close();
    }

    for (const call of [
      () => rc2.view().apply(() => 1),
      () => rc2.engine(0).apply(() => 1),
      () => rc2.view().push({ x: 1 }),
    ]) {
      let thrown: unknown;
      try {
        void call();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ClientClosedError);
      expect((thrown as Error).message).toMatch(/connect/);
    }
    // The cluster itself is unaffected.
    expect(await ctx.rc.engine(0).apply(() => engine.id)).toBe(0);
  });

  it("a task that calls process.exit → TaskCrashedError quickly; the engine survives with a fresh executor and an empty namespace", async () => {
    const victim = ids[0]!;
    await ctx.rc.engine(victim).push({ before: 1 });
    const resets: Array<{ id: number; reason: string }> = [];
    ctx.rc.on("engine_reset", (r) => resets.push(r));
    const t0 = Date.now();
    const err = await failure(() =>
      ctx.rc.engine(victim).apply(() => {
        process.exit(1);
      }),
    );
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(TaskCrashedError);
    const e = err as TaskCrashedError;
    expect(e.code).toBe("ERR_PTC_TASK_CRASHED");
    expect(e.engineId).toBe(victim);
    expect(e.message).toContain(`engine ${victim}`);
    expect(e.message).toMatch(/process\.exit/);
    expect(elapsed).toBeLessThan(3_000);
    await waitFor(() => resets.some((r) => r.id === victim), { what: `an engine_reset notice for engine ${victim}` });
    // Still registered, serving, and its namespace was reset.
    expect(ctx.rc.ids).toContain(victim);
    expect(await ctx.rc.engine(victim).apply(() => engine.id)).toBe(victim);
    expect(await ctx.rc.engine(victim).apply(() => typeof (globalThis as Record<string, unknown>)["before"])).toBe(
      "undefined",
    );
    expect(await ctx.rc.view(ids).apply(() => engine.id)).toEqual(ids);
  });

  it("an engine process killed with SIGKILL during a task → EngineLostError within a bounded time; other engines keep working", async () => {
    const [victim, survivor] = ids.slice(1) as [number, number];
    const pid = await ctx.rc.engine(victim).apply(() => engine.pid);
    expect(ctx.cluster.enginePids).toContain(pid);
    const started = join(ctx.dir, "kill-started");
    const ar = ctx.rc.engine(victim).apply(async (s: string) => {
      (require("node:fs") as typeof import("node:fs")).writeFileSync(s, "");
      await new Promise((r) => setTimeout(r, 60_000));
      return "never";
    }, started);
    await waitFor(() => existsSync(started), { what: "the task to start" });
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const err = await failure(() => ar);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(EngineLostError);
    expect((err as EngineLostError).engineId).toBe(victim);
    expect((err as EngineLostError).code).toBe("ERR_PTC_ENGINE_LOST");
    // Heartbeats every 500 ms, dead after 6 missed: about 3 s, never the 60 s the task would take.
    expect(elapsed).toBeLessThan(6_000);
    await waitFor(() => !ctx.rc.ids.includes(victim), { what: `engine ${victim} to leave rc.ids` });
    expect(await ctx.rc.engine(survivor).apply(() => engine.id)).toBe(survivor);
    expect(await ctx.rc.view().apply(() => engine.id)).toEqual(ids.filter((id) => id !== victim));
    // New work sent to the dead engine fails at once rather than hanging.
    const late = await failure(() => ctx.rc.engine(victim).apply(() => 1));
    expect(late).toBeInstanceOf(UnknownEngineError);
  });
});
