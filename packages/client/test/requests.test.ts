import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ClusterStartError,
  HubLostError,
  InvalidOptionError,
  ProtocolError,
  type HubRequest,
} from "@ptcluster/protocol";
import { Requests } from "../src/session/requests.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("Requests", () => {
  it("matches replies to requests by id, and turns refusals into error classes", async () => {
    const holds: number[] = [];
    const sent: Array<{ rid: number; req: HubRequest }> = [];
    const r: Requests = new Requests(() => holds.push(r.size));
    const send = (rid: number, req: HubRequest) => sent.push({ rid, req });
    const status = r.request({ what: "status" }, send);
    const launch = r.request({ what: "launch", n: 1, launcher: "", options: {} }, send);
    const queue = r.request({ what: "queue_status" }, send);
    const other = r.request({ what: "shutdown" }, send);
    expect(sent.map((s) => s.rid)).toEqual([1, 2, 3, 4]);
    r.settle(3, false, undefined, { code: "ERR_PTC_INVALID_OPTION", message: "bad" });
    r.settle(1, true, { engines: [] }, undefined);
    r.settle(2, false, undefined, { code: "ERR_PTC_START", message: "no launcher" });
    r.settle(4, false, undefined, { code: "ERR_PTC_SOMETHING", message: "odd" });
    await expect(status).resolves.toEqual({ engines: [] });
    await expect(launch).rejects.toBeInstanceOf(ClusterStartError);
    await expect(queue).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(other).rejects.toMatchObject({ code: "ERR_PTC_SOMETHING" });
    await expect(other).rejects.toBeInstanceOf(ProtocolError);
    // Held while one was pending, released when none was.
    expect(holds).toEqual([1, 0]);
  });

  it("a request the controller does not answer in time fails with HubLostError; a late reply is dropped", async () => {
    vi.useFakeTimers();
    const r = new Requests(() => undefined);
    const p = r.request({ what: "status" }, () => undefined, 1_000);
    vi.advanceTimersByTime(1_001);
    await expect(p).rejects.toBeInstanceOf(HubLostError);
    expect(r.size).toBe(0);
    expect(() => r.settle(1, true, {}, undefined)).not.toThrow();
  });

  it("failAll rejects every pending request with the given error", async () => {
    const r = new Requests(() => undefined);
    const a = r.request({ what: "status" }, () => undefined);
    const b = r.request({ what: "queue_status" }, () => undefined);
    const err = new HubLostError("gone");
    r.failAll(err);
    await expect(a).rejects.toBe(err);
    await expect(b).rejects.toBe(err);
    expect(r.size).toBe(0);
  });
});
