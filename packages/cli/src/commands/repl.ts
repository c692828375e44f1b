import * as repl from "node:repl";
import * as client from "@ptcluster/client";

/** `ptcluster repl`: a Node REPL with `rc` connected (top-level await works). */
export async function startRepl(o: { profile: string; clusterId: string }): Promise<void> {
  const rc = await client.connect({ profile: o.profile, clusterId: o.clusterId });
  process.stdout.write(`Connected to profile ${o.profile}${o.clusterId ? ` (cluster id ${o.clusterId})` : ""}: engines [${rc.ids.join(", ")}]. \`rc\` is your client; try \`await rc.view().applySync(() => "Hello, World")\`.\n`);
  const server = repl.start({ prompt: "ptcluster> ", useGlobal: true });
  Object.assign(server.context, { rc, ...client });
  // Input piped in (`... | ptcluster repl`) can end while an `await` line is still running: let
  // the lines already entered finish, and print, before the client closes.
  let running = 0;
  let settled: (() => void) | undefined;
  const evaluate = server.eval;
  const tracked: repl.REPLEval = function (this: repl.REPLServer, code, context, file, cb) {
    running++;
    evaluate.call(this, code, context, file, (err, result) => {
      cb(err, result);
      if (--running === 0) settled?.();
    });
  };
  (server as unknown as { eval: repl.REPLEval }).eval = tracked;
  await new Promise<void>((resolve) => server.on("exit", () => resolve()));
  if (running > 0) await new Promise<void>((resolve) => (settled = resolve));
  await rc.close();
}
