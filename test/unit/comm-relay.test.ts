import { describe, expect, it } from "vitest";
import type { CommMsg, HubToEngine } from "@ptcluster/protocol";
import { CommRelay } from "../../packages/hub/src/engines/comm-relay.js";
import { EngineRegistry } from "../../packages/hub/src/engines/engine-registry.js";

function hub() {
  const engines = new EngineRegistry();
  const sent: Array<{ msg: HubToEngine; to: string; parts: number }> = [];
  const relay = new CommRelay(engines, (msg, parts, to) =>
    sent.push({ msg, to: to.toString(), parts: parts?.length ?? 0 }),
  );
  const add = (uuid: string) =>
    engines.register(Buffer.from(uuid), { uuid, host: "h", pid: 1, concurrency: 1 }).info.id;
  return { engines, relay, sent, add };
}
const body = { body: Buffer.from([0xc0]), frames: [] };
const msg = (to: number): CommMsg => ({ type: "comm", g: "g", to, from: 0, ch: "u:0", pf: [0] });

describe("CommRelay (the controller's part in engine.comm)", () => {
  it("routes a message to its engine by id, with its part; one for an unknown engine comes back as peer_state down", () => {
    const h = hub();
    const a = h.add("A");
    const b = h.add("B");
    h.relay.fromEngine(Buffer.from("A"), msg(b), [body]);
    expect(h.sent).toEqual([{ msg: msg(b), to: "B", parts: 1 }]);
    h.sent.length = 0;
    h.relay.fromEngine(Buffer.from("A"), msg(7), [body]);
    expect(h.sent).toEqual([
      { msg: { type: "peer_state", id: 7, up: false, reason: expect.any(String) }, to: "A", parts: 0 },
    ]);
    expect(a).not.toBe(b);
  });

  it("forwards an abort to each member named; announces a gone engine to all, and only a gone one's return", () => {
    const h = hub();
    const a = h.add("A");
    const b = h.add("B");
    const c = h.add("C");
    const error = { code: "ERR_PTC_COMM_MISMATCH", message: "m" };
    h.relay.fromEngine(Buffer.from("A"), { type: "comm_abort", g: "g", to: [b, c, 99], error }, []);
    expect(h.sent.map((s) => [s.to, s.msg])).toEqual([
      ["B", { type: "comm_abort", g: "g", to: [b], error }],
      ["C", { type: "comm_abort", g: "g", to: [c], error }],
    ]);
    h.sent.length = 0;
    h.relay.engineUp(a); // a first registration is not announced
    expect(h.sent).toEqual([]);
    h.engines.remove(c);
    h.relay.engineGone(c, "process exited");
    expect(h.sent.map((s) => s.to).sort()).toEqual(["A", "B"]);
    h.sent.length = 0;
    const back = h.add("C");
    expect(back).toBe(c);
    h.relay.engineUp(c);
    expect(h.sent.map((s) => [s.to, s.msg])).toEqual([
      ["A", { type: "peer_state", id: c, up: true, reason: "registered" }],
      ["B", { type: "peer_state", id: c, up: true, reason: "registered" }],
    ]);
  });
});
