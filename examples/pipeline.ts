/**
 * The tutorials' text pipeline, "remove stop words → stem → deduplicate → split into sentences",
 * as a ptcluster pipeline: each document moves to the next stage as soon as its previous stage is
 * done with it, whatever the other documents do; the intermediate documents stay in the cluster,
 * and only the sentences come back. The same functions run serially in this process first, for
 * the times and to check that the pipeline yields exactly what the serial run does.
 *
 * These stages are cheap (well under a millisecond per document), so moving each document
 * through the controller five times costs more than the work, and one process is faster: a
 * pipeline pays off when a stage's work outweighs the trip (model inference, parsing large files,
 * calls to slow services), or when the data should not pass through the client at all.
 *
 *   npx ptcluster start -n 4 && npx tsx examples/pipeline.ts && npx ptcluster stop
 *   PIPELINE_DOCS=20000 npx tsx examples/pipeline.ts         # more documents (default 2,000)
 */
import { connect } from "@ptcluster/client";

const DOCS = Number(process.env["PIPELINE_DOCS"] ?? 2_000);

interface Doc {
  id: number;
  sentences: string[][];
}

// ---- the stages: plain functions, shipped to the engines as source ----------------------------

const STOP_WORDS = ["the", "a", "an", "of", "and", "to", "in", "is", "it", "that", "on", "for", "was", "with"];

/** Drops stop words (`STOP_WORDS` travels with the stage: `scope`). */
function removeStopWords(doc: Doc): Doc {
  const stop = new Set(STOP_WORDS);
  return { id: doc.id, sentences: doc.sentences.map((s) => s.filter((w) => !stop.has(w))) };
}

/** A crude suffix-stripping stemmer (a few of Porter's rules, applied until none matches). */
function stem(doc: Doc): Doc {
  const rules: Array<[RegExp, string]> = [
    [/sses$/, "ss"],
    [/ies$/, "i"],
    [/([^s])s$/, "$1"],
    [/eed$/, "ee"],
    [/(.[aeiou].*)(ed|ing)$/, "$1"],
    [/ational$/, "ate"],
    [/ization$/, "ize"],
    [/fulness$/, "ful"],
    [/ousness$/, "ous"],
    [/(.{3,})(ly|ness|ment)$/, "$1"],
  ];
  const one = (word: string): string => {
    let w = word;
    for (let changed = true; changed;) {
      changed = false;
      for (const [re, to] of rules) {
        const next = w.replace(re, to);
        if (next !== w && next.length >= 3) {
          w = next;
          changed = true;
        }
      }
    }
    return w;
  };
  return { id: doc.id, sentences: doc.sentences.map((s) => s.map(one)) };
}

/** Removes words repeated within a sentence, and sentences left with fewer than 3 words. */
function dedupe(doc: Doc): Doc {
  return { id: doc.id, sentences: doc.sentences.map((s) => [...new Set(s)]).filter((s) => s.length >= 3) };
}

const hasSentences = (doc: Doc): boolean => doc.sentences.length > 0;

function splitSentences(doc: Doc): string[] {
  return doc.sentences.map((s, i) => `${doc.id}.${i}: ${s.join(" ")}`);
}

// ---- generated documents ----------------------------------------------------------------------

const VOCABULARY = [
  ...STOP_WORDS,
  ...["cluster", "engines", "running", "stemming", "documents", "relational", "happiness", "quickly"],
  ...["organization", "processes", "pipelines", "agreed", "caresses", "ponies", "hopeful", "movement"],
];

/** Document `id`: a few sentences of words drawn with a small deterministic generator. */
function makeDoc(id: number): Doc {
  let seed = id * 2654435761;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  const sentences = Array.from({ length: 1 + Math.floor(next() * 20) }, () =>
    Array.from(
      { length: 2 + Math.floor(next() * 20) },
      () => VOCABULARY[Math.floor(next() * VOCABULARY.length)] as string,
    ),
  );
  return { id, sentences };
}

function* readDocuments(n: number): Generator<Doc> {
  for (let id = 0; id < n; id++) yield makeDoc(id);
}

// ---- serial, then pipelined --------------------------------------------------------------------

const t0 = performance.now();
const serial: string[] = [];
for (const doc of readDocuments(DOCS)) {
  const d = dedupe(stem(removeStopWords(doc)));
  if (hasSentences(d)) serial.push(...splitSentences(d));
}
const serialS = (performance.now() - t0) / 1000;

const rc = await connect();
const sentences = rc
  .pipeline(readDocuments(DOCS))
  .map(removeStopWords, { scope: { STOP_WORDS } })
  .map(stem)
  .map(dedupe)
  .filter(hasSentences)
  .flatMap(splitSentences);

const t1 = performance.now();
const out: string[] = [];
for await (const s of sentences) out.push(s); // in input order; { ordered: false } for first done
const pipelinedS = (performance.now() - t1) / 1000;

console.log(`${DOCS} documents → ${out.length} sentences, e.g. "${out[0]}"`);
console.log(`serial, in this process: ${serialS.toFixed(2)} s`);
console.log(
  `pipelined on ${rc.ids.length} engines: ${pipelinedS.toFixed(2)} s (×${(serialS / pipelinedS).toFixed(2)})`,
);
console.log(`same sentences, same order as the serial run: ${JSON.stringify(out) === JSON.stringify(serial)}`);
console.table(
  sentences.stats().map((s) => ({
    stage: `${s.stage} ${s.kind} ${s.name}`,
    done: s.done,
    failed: s.failed,
    "items/s": Math.round(s.itemsPerSec),
    "p50 ms": Number(s.p50Ms.toFixed(3)),
    "p95 ms": Number(s.p95Ms.toFixed(3)),
  })),
);
const { bytesReceived = 0 } = rc.connectionStats();
console.log(`received by this client: ${(bytesReceived / 2 ** 20).toFixed(1)} MB (the sentences only)`);
await rc.close();
