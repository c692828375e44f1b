import { describe, expect, it } from "vitest";
import { runSoak } from "../scripts/soak.js";

// The short version of `npm run soak`: a load-balanced map while engines are killed mid-run and
// replaced; every result arrives exactly once, in order, and right.
describe("soak (short)", () => {
  it("60,000 items with 4 engines killed along the way: every result exactly once", async () => {
    const r = await runSoak({ items: 60_000, kills: 4, engines: 3, seed: 7 });
    expect(r.items).toBe(60_000);
    expect(r.wrong).toBe(0);
    expect(r.kills).toBe(4);
    // The killed engines were replaced (new ids) while the map ran.
    expect(r.enginesSeen).toBeGreaterThanOrEqual(3 + 4);
  }, 60_000);
});
