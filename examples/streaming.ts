/**
 * A lazy map over a long input in bounded memory: the tutorials' "processing 500 GB of text: use
 * imap so results go to disk as they come". The input is a generator of a million items, never an
 * array; `imap` reads it only as results are consumed and keeps at most `maxInFlight` items
 * submitted and not yet consumed, so the client's memory stays flat however long the input is.
 *
 *   npx ptcluster start -n 2 && npx tsx examples/streaming.ts && npx ptcluster stop
 *   npx tsx examples/streaming.ts 200000          # fewer items (or STREAMING_ITEMS=200000)
 *
 * The count defaults to 1,000,000 when run by hand; CI runs it with a smaller count
 * (STREAMING_ITEMS) so the test finishes in seconds on a 2-core machine.
 */
import { connect } from "@ptcluster/client";

const ITEMS = Number(process.argv[2] ?? process.env["STREAMING_ITEMS"] ?? 1_000_000);
const MAX_IN_FLIGHT = 10_000;

let produced = 0;
let consumed = 0;
let maxLead = 0; // how far the generator ever ran ahead of the consumer

/** The input: produced one item at a time, only when `imap` asks for more. */
function* items(n: number): Generator<number> {
  for (let i = 0; i < n; i++) {
    produced++;
    yield i;
  }
}

const rss = () => process.memoryUsage().rss / 2 ** 20;

await using rc = await connect();
const lb = rc.loadBalancedView();
const odd = (i: number) => 2 * i + 1; // the i-th odd number: the first n of them sum to n²

const rss0 = rss();
let peak = rss0;
let sum = 0;
const t0 = performance.now();
const every = Math.max(1, Math.floor(ITEMS / 10));
for await (const y of lb.imap(odd, items(ITEMS), { maxInFlight: MAX_IN_FLIGHT })) {
  sum += y;
  consumed++;
  maxLead = Math.max(maxLead, produced - consumed);
  if ((consumed & 1023) === 0) peak = Math.max(peak, rss());
  if (consumed % every === 0) {
    const s = (performance.now() - t0) / 1000;
    console.log(
      `${consumed.toLocaleString("en-US").padStart(10)} items  ${Math.round(consumed / s)
        .toLocaleString("en-US")
        .padStart(8)} items/s  RSS ${rss().toFixed(0)} MB`,
    );
  }
}
const seconds = (performance.now() - t0) / 1000;
peak = Math.max(peak, rss());

if (consumed !== ITEMS || sum !== ITEMS * ITEMS)
  throw new Error(`wrong sum ${sum} (expected ${ITEMS * ITEMS}) or count ${consumed}`);

console.log(
  `\nsum of the first ${ITEMS.toLocaleString("en-US")} odd numbers = ${sum.toLocaleString("en-US")} = ${ITEMS.toLocaleString("en-US")}² (checked)`,
);
console.log(
  `${ITEMS.toLocaleString("en-US")} items in ${seconds.toFixed(2)} s: ${Math.round(ITEMS / seconds).toLocaleString("en-US")} items/s on ${rc.ids.length} engines`,
);
console.log(
  `the generator ran at most ${maxLead.toLocaleString("en-US")} items ahead of the consumer (maxInFlight ${MAX_IN_FLIGHT.toLocaleString("en-US")})`,
);
console.log(
  `client peak RSS growth: ${(peak - rss0).toFixed(1)} MB (RSS ${rss0.toFixed(0)} → peak ${peak.toFixed(0)} MB)`,
);
