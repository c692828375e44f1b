import type { Part } from "@ptcluster/protocol";

/**
 * Messages to one peer gathered while handling one incoming message, then sent as one batch:
 * a submit of 1,000 tasks becomes one message per engine, not 1,000.
 */
export class Outbox<Item> {
  private readonly items = new Map<string, { to: Buffer; items: Item[]; parts: Part[] }>();

  push(key: string, to: Buffer, item: Item, part: Part): void {
    let box = this.items.get(key);
    if (!box) {
      box = { to, items: [], parts: [] };
      this.items.set(key, box);
    }
    box.items.push(item);
    box.parts.push(part);
  }

  /** Hands each peer's batch to `send` and empties the outbox. */
  flush(send: (to: Buffer, items: Item[], parts: Part[]) => void): void {
    if (this.items.size === 0) return;
    for (const box of this.items.values()) send(box.to, box.items, box.parts);
    this.items.clear();
  }
}
