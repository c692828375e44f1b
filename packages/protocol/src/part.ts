/** One body plus its binary frames: a value (or a batch of them) as it travels in a message. */
export interface Part {
  body: Buffer;
  frames: Buffer[];
}

/** A part with no body and no frames (a result that carries nothing, a missing part). Shared: never mutate it. */
export const EMPTY_PART: Readonly<Part> = Object.freeze({ body: Buffer.alloc(0), frames: [] as Buffer[] });
