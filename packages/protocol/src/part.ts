/** One body plus its binary frames: a value (or a batch of them) as it travels in a message. */
export interface Part {
  body: Buffer;
  frames: Buffer[];
}
