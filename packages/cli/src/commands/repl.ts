import * as repl from "node:repl";
import * as client from "@ptcluster/client";

/** `ptcluster repl`: a Node REPL with `rc` connected (top-level await works). */
export async function startRepl(o: { profile: string; clusterId: string }): Promise<void> {
  const rc = await client.connect({ profile: o.profile, clusterId: o.clusterId });
  process.stdout.write(`Connected to profile ${o.profile}${o.clusterId ? ` (cluster id ${o.clusterId})` : ""}: engines [${rc.ids.join(", ")}]. \`rc\` is your client; try \`await rc.view().applySync(() => "Hello, World")\`.\n`);
  const server = repl.start({ prompt: "ptcluster> ", useGlobal: true });
  Object.assign(server.context, { rc, ...client });
  await new Promise<void>((resolve) => server.on("exit", () => resolve()));
  await rc.close();
}
