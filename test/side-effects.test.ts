import { execa } from "execa";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// `"sideEffects": false` is a promise to the user: importing @ptcluster/client changes nothing
// they would notice in their own use of msgpackr (how ArrayBuffers, typed arrays, errors, boxed
// primitives and functions pack, what `unpack` accepts) or of zeromq (the global context's
// options). Checked in a fresh process, since both are process-wide.

const FIXTURE = fileURLToPath(new URL("./fixtures/import-side-effects.mjs", import.meta.url));

describe("importing @ptcluster/client", () => {
  it("leaves msgpackr's global behaviour and zmq.context untouched, and its own codec still works", async () => {
    const { stdout } = await execa(process.execPath, [FIXTURE], { cwd: fileURLToPath(new URL("..", import.meta.url)) });
    const { before, after, codecWorks } = JSON.parse(stdout) as {
      before: Record<string, unknown>;
      after: Record<string, unknown>;
      codecWorks: boolean;
    };
    expect(before["blocky"]).toBe(true); // zeromq's default: the probe sees a real change
    expect(after).toEqual(before);
    expect(codecWorks).toBe(true);
  });
});
