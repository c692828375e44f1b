import { describe, expect, it } from "vitest";
import { execa, execaSync } from "execa";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ClientDroppedError, TaskCancelledError, UnknownTaskError } from "@ptcluster/client";
import { BIN, useCluster } from "./helpers/cluster.js";
import { failure, gatedTask, scratchDir } from "./helpers/lb.js";
import { waitFor } from "./helpers/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));

// A client that vanishes (killed, no goodbye): once silent past --client-timeout its tasks,
// queued and running, are cancelled so engines serve others (issue 12); results made meanwhile
// are kept, and another client can fetch them. test/abort.test.ts has a running task cancelled.
describe("client loss", () => {
  const ctx = useCluster({ n: 1, extra: ["--client-timeout", "1000"] });

  it("queued tasks are cancelled after --client-timeout; the result of the task that finished meanwhile is kept for rc.getResult", async () => {
    const gate = join(ctx.dir, "vanishing.gate");
    const child = execa(process.execPath, ["--import", "tsx", "test/fixtures/vanishing-client.ts", gate], {
      cwd: root,
      env: { PTCLUSTER_DIR: ctx.dir },
      reject: false,
      buffer: false,
    });
    const ids = await new Promise<{ running: string; queued: string[] }>((resolve, reject) => {
      let text = "";
      child.stdout?.on("data", (d: Buffer) => {
        text += d.toString();
        if (text.includes("\n"))
          resolve(JSON.parse(text.split("\n")[0] as string) as { running: string; queued: string[] });
      });
      child.once("exit", () => reject(new Error("the client exited early")));
    });
    expect((await ctx.rc.status()).tasksInFlight).toBe(21);
    child.kill("SIGKILL");
    await child;
    // The running task finishes after its client died and before the controller gives up on it
    // (silent for 1 s): its result has nowhere to go but the store.
    writeFileSync(gate, "");
    // Queued work is cancelled once the client has been silent long enough.
    await waitFor(async () => (await ctx.rc.status()).tasksInFlight === 0, {
      what: "the queued tasks to be cancelled",
      timeout: 10_000,
    });
    const after = await ctx.rc.status();
    expect(after.clients).toBe(1);
    expect(after.unassigned).toBe(0);

    expect(await ctx.rc.getResult(ids.running).get(10_000)).toBe(42);
    const cancelled = await ctx.rc.getResult(ids.queued[5] as string).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(cancelled).toBeInstanceOf(TaskCancelledError);
    // A result is handed out once.
    const again = await ctx.rc.getResult(ids.running).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(again).toBeInstanceOf(UnknownTaskError);
    expect((again as UnknownTaskError).code).toBe("ERR_PTC_UNKNOWN_TASK");
    expect(() => ctx.rc.getResult("not-an-id")).toThrow(/client id/);
    // The engine is free again.
    expect(await ctx.rc.engine(0).apply(() => "mine")).toBe("mine");
  });

  it("a result still running when fetched is delivered to the new client when it finishes", async () => {
    const other = await ctx.cluster.connect();
    const started = join(ctx.dir, "slow.started");
    const slow = other.loadBalancedView().apply((marker: string) => {
      require("node:fs").writeFileSync(marker, "");
      return new Promise<string>((r) => setTimeout(() => r("late"), 1_500));
    }, started);
    const [msgId] = slow.msgIds;
    // Running on its engine, not just sent there: a task that has not started is cancelled with its client.
    await waitFor(() => existsSync(started), { what: "the slow task to start" });
    // `other` goes away politely: its running task is kept going, not cancelled.
    await other.close();
    expect(await ctx.rc.getResult(msgId as string).get(10_000)).toBe("late");
  });

  it("a client whose event loop was held past --client-timeout: what it had pending fails with ClientDroppedError, and it connects again by itself", async () => {
    const rc2 = await ctx.cluster.connect();
    try {
      const work = scratchDir(ctx.dir);
      const tag = join(work, "held");
      const running = rc2.loadBalancedView().apply(gatedTask, join(work, "never"), tag);
      const waiting = rc2.shared.queue("held").get();
      await waitFor(() => existsSync(`${tag}.started`), { what: "the task to start" });
      // Held synchronously (a long computation), neither client in this process pings: held on,
      // until the controller has let both go (only `ptcluster status`'s own client is left).
      const clients = () =>
        (
          JSON.parse(
            execaSync(process.execPath, [BIN, "status", "--json"], { env: { PTCLUSTER_DIR: ctx.dir } }).stdout,
          ) as {
            clients: number;
          }
        ).clients;
      for (const deadline = Date.now() + 20_000; clients() > 1;)
        if (Date.now() > deadline) throw new Error("the controller did not let the held clients go within 20 s");
      for (const pending of [running, waiting]) {
        const err = await failure(() => pending);
        expect(err).toBeInstanceOf(ClientDroppedError);
        expect((err as ClientDroppedError).code).toBe("ERR_PTC_CLIENT_DROPPED");
        expect((err as Error).message).toMatch(/silent for more than 1000 ms.*--client-timeout/);
      }
      // The controller cancelled the running task (its engine serves again), and the client
      // connected again: its next calls, load-balanced, direct and on shared state, work, with a
      // function it had sent before (the controller let its sources go with it) or a new one.
      await waitFor(() => existsSync(`${tag}.cancelled`), { what: "the held client's task to be cancelled" });
      writeFileSync(join(work, "open"), "");
      expect(await rc2.loadBalancedView().apply(gatedTask, join(work, "open"), `${tag}2`)).toBe("opened");
      expect(await rc2.engine(0).apply(gatedTask, join(work, "open"), `${tag}3`)).toBe("opened");
      expect(await rc2.loadBalancedView().apply(() => 7)).toBe(7);
      await rc2.shared.queue("held").put(1);
      expect(await rc2.shared.queue("held").get()).toBe(1);
      // The idle client learns it was let go at its next ping, or with its next call, which then
      // fails with ClientDroppedError: the one after works.
      await waitFor(async () => {
        try {
          return (await ctx.rc.loadBalancedView().apply(() => 9)) === 9;
        } catch (err) {
          if (err instanceof ClientDroppedError) return false;
          throw err;
        }
      });
      expect((await ctx.rc.status()).clients).toBe(2);
    } finally {
      await rc2.close();
    }
  });
});
