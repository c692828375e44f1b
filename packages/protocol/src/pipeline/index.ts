export * from "./messages.js";
export * from "./batch.js";
