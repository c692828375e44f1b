import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "@ptcluster/protocol";
import { abortRequest, splitAbortTargets } from "../src/session/abort-targets.js";

const ID = `${"c".repeat(32)}:3`;

describe("what rc.abort() is given", () => {
  it("sorts results, own task ids and msg ids of any client", () => {
    const result = { abort: () => undefined };
    expect(splitAbortTargets([result, 4, ID])).toEqual({ kind: "list", results: [result], ids: [4], msgIds: [ID] });
    expect(splitAbortTargets(ID)).toEqual({ kind: "list", results: [], ids: [], msgIds: [ID] });
    expect(splitAbortTargets(result)).toEqual({ kind: "list", results: [result], ids: [], msgIds: [] });
  });

  it("takes a selector object, checked eagerly", () => {
    expect(splitAbortTargets({ engines: [1], all: false })).toEqual({
      kind: "selector",
      selector: { engines: [1], all: false },
    });
    expect(abortRequest({ tasks: [ID], engines: [], all: true })).toEqual({ what: "abort", tasks: [ID], all: true });
    expect(() => splitAbortTargets({ engine: 1 })).toThrow(/Unknown abort option `engine`/);
    expect(() => splitAbortTargets({ engines: [-1] })).toThrow(InvalidOptionError);
    expect(() => splitAbortTargets({ tasks: ["x"] })).toThrow(/Expected a task id like "<client id>:<number>"/);
    expect(() => splitAbortTargets([{}])).toThrow(/Expected results, task ids/);
  });
});
