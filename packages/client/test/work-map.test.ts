import { describe, expect, it } from "vitest";
import { WorkMap } from "../src/keep-alive.js";

describe("WorkMap (what holds the process)", () => {
  it("reports only the changes between empty and not empty", () => {
    const sizes: number[] = [];
    const m: WorkMap<number, string> = new WorkMap(() => sizes.push(m.size));
    m.set(1, "a");
    m.set(2, "b");
    m.set(1, "a again");
    expect(sizes).toEqual([1]);
    m.delete(1);
    m.delete(3);
    expect(sizes).toEqual([1]);
    m.delete(2);
    expect(sizes).toEqual([1, 0]);
    m.delete(2);
    m.clear();
    expect(sizes).toEqual([1, 0]);
    m.set(5, "c");
    m.set(6, "d");
    m.clear();
    expect(sizes).toEqual([1, 0, 1, 0]);
  });
});
