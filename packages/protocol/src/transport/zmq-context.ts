import * as zmq from "zeromq";

/** Held here for the life of the process: a Context that is garbage-collected shuts its sockets down. */
let context: zmq.Context | undefined;

/**
 * The ZeroMQ context for ptcluster's sockets in a user's process, made on first use. Its own, not
 * zeromq's global `zmq.context`: changing an option of that one would change the user's own
 * sockets (the package promises no side effects). Not blocky, so every socket made in it,
 * including the monitor zeromq.js makes behind `socket.events`, lingers not at all unless told to:
 * a finished script never waits at exit for messages nobody will read, and a closed monitor does
 * not keep its endpoint bound (with blocky contexts, a client opened after another one closed
 * could fail with EADDRINUSE when its monitor reused the same address).
 */
export function zmqContext(): zmq.Context {
  return (context ??= new zmq.Context({ blocky: false }));
}
