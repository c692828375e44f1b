import { SharedValueError } from "@ptcluster/protocol";

/** The read-modify-write operations of `update` on a dict entry, a counter or an array element. */
export const UPDATE_OPS = ["add", "sub", "mul", "div", "min", "max", "and", "or", "xor"] as const;
export type UpdateOp = (typeof UPDATE_OPS)[number];

function isOp(op: string): op is UpdateOp {
  return (UPDATE_OPS as readonly string[]).includes(op);
}

/** `current op operand`; a bigint with a bigint, a number with a number. */
export function applyUpdate(current: number | bigint, op: string | undefined, operand: unknown): number | bigint {
  if (op === undefined || !isOp(op))
    throw new SharedValueError(`Unknown update \`${String(op)}\`. Known updates: ${UPDATE_OPS.join(", ")}.`);
  if (typeof current === "bigint") {
    if (typeof operand !== "bigint")
      throw new SharedValueError(`The value is a bigint; update it with a bigint, not ${describe(operand)}.`);
    return bigintUpdate(current, op, operand);
  }
  if (typeof operand !== "number")
    throw new SharedValueError(`The value is a number; update it with a number, not ${describe(operand)}.`);
  switch (op) {
    case "add":
      return current + operand;
    case "sub":
      return current - operand;
    case "mul":
      return current * operand;
    case "div":
      return current / operand;
    case "min":
      return Math.min(current, operand);
    case "max":
      return Math.max(current, operand);
    case "and":
      return current & operand;
    case "or":
      return current | operand;
    case "xor":
      return current ^ operand;
  }
}

function bigintUpdate(a: bigint, op: UpdateOp, b: bigint): bigint {
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return a * b;
    case "div":
      if (b === 0n) throw new SharedValueError("Division of a bigint by 0n.");
      return a / b;
    case "min":
      return a < b ? a : b;
    case "max":
      return a > b ? a : b;
    case "and":
      return a & b;
    case "or":
      return a | b;
    case "xor":
      return a ^ b;
  }
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "object"}`;
  return `${typeof v} ${typeof v === "string" ? JSON.stringify(v).slice(0, 40) : String(v)}`;
}
