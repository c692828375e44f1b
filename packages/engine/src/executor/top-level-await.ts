import { parse, type Node, type Pattern, type Statement } from "acorn";

/**
 * Rewrites code that uses top-level `await` so it runs as an async function while behaving like
 * a script, as Node's REPL does: top-level declarations become globals of the namespace, and the
 * value of a final expression statement is returned.
 */
export function rewriteTopLevelAwait(code: string): string {
  const program = parse(code, {
    ecmaVersion: "latest",
    sourceType: "script",
    allowAwaitOutsideFunction: true,
    allowReturnOutsideFunction: false,
  });
  const names = new Set<string>();
  const edits: Array<{ start: number; end: number; text: string }> = [];
  const src = (n: { start: number; end: number }) => code.slice(n.start, n.end);
  const body = program.body as Statement[];
  body.forEach((stmt, i) => {
    switch (stmt.type) {
      case "VariableDeclaration": {
        const parts = stmt.declarations.map((d) => {
          collectNames(d.id, names);
          return `(${src(d.id)} = ${d.init ? src(d.init) : "undefined"})`;
        });
        edits.push({ start: stmt.start, end: stmt.end, text: `void (${parts.join(", ")});` });
        break;
      }
      case "FunctionDeclaration":
      case "ClassDeclaration":
        if (stmt.id) {
          names.add(stmt.id.name);
          edits.push({ start: stmt.start, end: stmt.end, text: `${stmt.id.name} = ${src(stmt)};` });
        }
        break;
      case "ExpressionStatement":
        if (i === body.length - 1)
          edits.push({ start: stmt.start, end: stmt.end, text: `return (${src(stmt.expression)});` });
        break;
      default:
        break;
    }
  });
  let out = code;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  const decl = names.size ? `var ${[...names].join(", ")};\n` : "";
  return `${decl}(async () => {\n${out}\n})()`;
}

function collectNames(p: Pattern | Node, into: Set<string>): void {
  const n = p as Pattern;
  switch (n.type) {
    case "Identifier":
      into.add(n.name);
      break;
    case "ObjectPattern":
      for (const prop of n.properties) collectNames(prop.type === "RestElement" ? prop.argument : prop.value, into);
      break;
    case "ArrayPattern":
      for (const el of n.elements) if (el) collectNames(el, into);
      break;
    case "AssignmentPattern":
      collectNames(n.left, into);
      break;
    case "RestElement":
      collectNames(n.argument, into);
      break;
    default:
      break;
  }
}
