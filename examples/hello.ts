/**
 * Hello, World on every engine: the first thing to try after `ptcluster start -n 4`.
 *   npx ptcluster start -n 4 && npx tsx examples/hello.ts && npx ptcluster stop
 * (ipyparallel: `c = ipp.Client(); c.ids; c[:].apply_sync(lambda: "Hello, World")`)
 */
import { connect } from "@ptcluster/client";

await using rc = await connect();
console.log("engines:", rc.ids);

const dv = rc.view();
console.log(await dv.applySync(() => "Hello, World"));

// Each engine is its own process: engine.id and engine.pid are defined inside shipped code.
console.log(await dv.applySync(() => `engine ${engine.id} is pid ${engine.pid}`));

// map splits the items into one block per engine and returns the results in input order.
console.log(await dv.map((x: number) => x * x, [1, 2, 3, 4, 5, 6, 7, 8]));
