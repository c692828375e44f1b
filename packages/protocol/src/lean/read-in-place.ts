import { Socket } from "node:net";
import type { MsgReader } from "./msg-reader.js";

/** What a read brought: its complete messages (undefined: the stream is malformed) and its size. */
export type OnMessages = (msgs: Buffer[] | undefined, bytes: number) => void;

/**
 * A socket option (`connect({ onread })`) that makes reads land where `reader` says
 * ({@link MsgReader.target}): the bytes of a large message go from the kernel straight into that
 * message's buffer, once, instead of into a 64 KiB read buffer per read and then copied on.
 */
export function readInto(
  reader: MsgReader,
  on: OnMessages,
): { buffer: () => Buffer; callback: (n: number) => boolean } {
  return {
    buffer: () => reader.target(),
    // `false` would pause the socket: reading goes on (the owner destroys a stream it refuses).
    callback: (n: number) => {
      on(reader.landed(n), n);
      return true;
    },
  };
}

/**
 * An accepted connection (from a server made with `pauseOnConnect`), reading as {@link readInto}.
 * Node offers `onread` to sockets it is given a handle for, not to a server's: the paused
 * connection's handle is handed to a new Socket that reads this way. Where that handle is not
 * there (another runtime), the connection reads as usual (`data` events into `reader.push`).
 */
export function readInPlace(raw: Socket, reader: MsgReader, on: OnMessages): Socket {
  const handle = (raw as unknown as { _handle?: object | null })._handle;
  if (!handle) {
    raw.on("data", (chunk: Buffer) => on(reader.push(chunk), chunk.length));
    raw.resume();
    return raw;
  }
  return new Socket({ handle, onread: readInto(reader, on) } as ConstructorParameters<typeof Socket>[0]);
}
