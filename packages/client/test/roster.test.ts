import { describe, expect, it } from "vitest";
import type { EngineInfo } from "@ptcluster/protocol";
import { Roster } from "../src/session/roster.js";

const engine = (id: number): EngineInfo => ({ id, pid: 1000 + id, host: "h", concurrency: 1 }) as unknown as EngineInfo;

function withEvents() {
  const events: string[] = [];
  const roster = new Roster({
    emit: (event, ...args) => events.push(`${event} ${JSON.stringify((args[0] as { id?: number })?.id)}`) > 0,
  });
  return { roster, events };
}

describe("Roster", () => {
  it("keeps engines sorted as they come and go; a down for an unknown engine says nothing", () => {
    const { roster, events } = withEvents();
    roster.seed([engine(2)]);
    roster.up(engine(0));
    roster.down(7, "never seen");
    roster.down(2, "died");
    expect(roster.ids).toEqual([0]);
    expect(roster.info(0)?.pid).toBe(1000);
    expect(events).toEqual(["engine_up 0", "engine_down 2"]);
  });

  it("a tick with another engine count catches up from the controller's status, once at a time", async () => {
    const { roster, events } = withEvents();
    roster.seed([engine(0), engine(1)]);
    let calls = 0;
    let answer!: (s: { engines: EngineInfo[] }) => void;
    const status = () => {
      calls++;
      return new Promise<{ engines: EngineInfo[] }>((r) => (answer = r));
    };
    roster.tick(2, status);
    expect(calls).toBe(0);
    roster.tick(3, status);
    roster.tick(3, status);
    expect(calls).toBe(1);
    answer({ engines: [engine(1), engine(2), engine(4)] });
    await new Promise((r) => setImmediate(r));
    expect(roster.ids).toEqual([1, 2, 4]);
    expect(events.sort()).toEqual(["engine_down 0", "engine_up 2", "engine_up 4"]);
    // Finished: the next mismatch asks again.
    roster.tick(5, status);
    expect(calls).toBe(2);
  });

  it("the first seed is silent; a later one (connected again after the controller was lost) says what changed", () => {
    const { roster, events } = withEvents();
    roster.seed([engine(0), engine(1)]);
    expect(events).toEqual([]);
    roster.seed([engine(1), engine(3)]);
    expect(roster.ids).toEqual([1, 3]);
    expect(events.sort()).toEqual(["engine_down 0", "engine_up 3"]);
    const empty = withEvents();
    empty.roster.seed([]);
    empty.roster.seed([engine(5)]);
    expect(empty.events).toEqual(["engine_up 5"]);
  });
});
