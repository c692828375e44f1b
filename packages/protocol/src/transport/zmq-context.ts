import * as zmq from "zeromq";

/** Held here for the life of the process: a Context that is garbage-collected shuts its sockets down. */
let context: zmq.Context | undefined;

/**
 * The ZeroMQ context for ptcluster's sockets in a user's process, made on first use. Its own, not
 * zeromq's global `zmq.context`: changing an option of that one would change the user's own
 * sockets (the package promises no side effects). Not blocky, as the client's sockets always were:
 * a finished script never waits at exit for messages nobody will read.
 */
export function zmqContext(): zmq.Context {
  return (context ??= new zmq.Context({ blocky: false }));
}
