/**
 * Each engine has its own namespace ("a global dict stays empty: each process has its own memory").
 * push, pull and execute move names in and out explicitly; `with({ scope })` ships values with one
 * function; a name defined nowhere fails with an error that says which of those to use.
 */
import { connect, UndefinedNameError, CompositeError } from "@ptcluster/client";

await using rc = await connect();
const dv = rc.view();

await dv.push({ threshold: 10, table: new Map([["a", 1], ["b", 2]]) });
await dv.execute("globalThis.counter = (globalThis.counter ?? 0) + engine.id");
console.log("counter per engine:", await dv.pull("counter"));
console.log("threshold and table:", (await dv.pull(["threshold", "table"]))[0]);

// Free names resolve against the engine namespace…
console.log(await dv.applySync((x: number) => x > threshold, 12));
// …or against values shipped with the function.
const factor = 3;
console.log(await dv.with({ scope: { factor } }).applySync((x: number) => x * factor, 14));

try {
  await dv.applySync(() => notDefinedAnywhere * 2);
} catch (err) {
  const first = err instanceof CompositeError ? err.errors[0] : err;
  if (!(first instanceof UndefinedNameError)) throw err;
  console.log(`${first.code}: ${first.message}`);
}

declare const threshold: number;
declare const notDefinedAnywhere: number;
