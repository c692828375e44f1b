/**
 * The lean link's generic pieces (`@ptcluster/protocol/lean`): per-connection keys and tags,
 * cutting a TCP stream into messages, reused large buffers, batched writes. Executor links
 * (`engine.comm`) and clients' direct links build their messages on them.
 */
export * from "./link-auth.js";
export * from "./msg-reader.js";
export * from "./buffer-pool.js";
export * from "./socket-writer.js";
export * from "./frame-layout.js";
export * from "./read-in-place.js";
export { DuplexLink, type DuplexEvents } from "./duplex-link.js";
