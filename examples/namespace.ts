/**
 * Each engine has its own namespace ("a global dict stays empty: each process has its own memory").
 * push, pull and execute move names in and out explicitly (functions too, as source); `with({ scope })`
 * ships values with one function; a name defined nowhere fails with an error that says which of those to use.
 */
import { connect, UndefinedNameError, CompositeError } from "@ptcluster/client";

await using rc = await connect();
const dv = rc.view();

await dv.push({
  threshold: 10,
  table: new Map([
    ["a", 1],
    ["b", 2],
  ]),
});
await dv.execute("globalThis.counter = (globalThis.counter ?? 0) + engine.id");
console.log("counter per engine:", await dv.pull("counter"));
console.log("threshold and table:", (await dv.pull(["threshold", "table"]))[0]);

// Free names resolve against the engine namespace…
console.log(await dv.applySync((x: number) => x > threshold, 12));
// …or against values shipped with the function.
const factor = 3;
console.log(await dv.with({ scope: { factor } }).applySync((x: number) => x * factor, 14));

// Functions travel as source too: helpers pushed once are called by name, and call each other.
const isPrime = (n: number) => {
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return n > 1;
};
const countPrimes = (below: number) => {
  let c = 0;
  for (let i = 0; i < below; i++) if (isPrime(i)) c++;
  return c;
};
await dv.push({ isPrime, countPrimes });
console.log("primes below 100 per engine:", await dv.applySync(() => countPrimes(100)));

try {
  await dv.applySync(() => notDefinedAnywhere * 2);
} catch (err) {
  const first = err instanceof CompositeError ? err.errors[0] : err;
  if (!(first instanceof UndefinedNameError)) throw err;
  console.log(`${first.code}: ${first.message}`);
}

declare const threshold: number;
declare const notDefinedAnywhere: number;
