// Cross-checks the hand-written .proto files in fcgi/rpc/proto against the message
// codecs bundled in the official JS SDK (node_modules/modal/dist/index.js): for every
// field we declare, the SDK's encoder must use the same field number and wire type.
// Exit status 1 on any mismatch or missing message. Usage: node tools/check-proto-vs-sdk.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = path.resolve(here, "../../../fcgi/rpc/proto");
const bundle = fs.readFileSync(path.resolve(here, "../node_modules/modal/dist/index.js"), "utf8");

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(protoDir, path.basename(target));
root.loadSync(["modal_client.proto", "task_command_router.proto"], { keepCase: true });
root.resolveAll();

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
function wireType(field) {
  if (field.map) return 2;
  if (field.resolvedType && field.resolvedType instanceof protobuf.Type) return 2;
  if (field.repeated && !["string", "bytes"].includes(field.type) && !field.resolvedType) return 2;
  if (field.repeated && field.resolvedType instanceof protobuf.Enum) return 2;
  switch (field.type) {
    case "string": case "bytes": return 2;
    case "double": case "fixed64": case "sfixed64": return 1;
    case "float": case "fixed32": case "sfixed32": return 5;
    default: return 0;
  }
}

function sdkTags(tsName) {
  const start = bundle.indexOf(`\nvar ${tsName} = {\n  encode(`);
  if (start < 0) return null;
  const end = bundle.indexOf("\n  decode(", start);
  const body = bundle.slice(start, end).split("\n");
  const tags = new Map();
  let last = null;
  for (const line of body) {
    const m = line.match(/message\.(\w+)/g);
    if (m) last = m[m.length - 1].slice("message.".length);
    const oneof = line.match(/\$case === "(\w+)"/);
    if (oneof) last = oneof[1];
    const t = line.match(/uint32\((\d+)\)/);
    if (t && last) tags.set(last, Number(t[1]));
  }
  return tags;
}

let bad = 0, checked = 0;
function visit(ns, prefix) {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type) {
      const tsName = prefix + obj.name;
      const tags = sdkTags(tsName);
      if (tags === null) {
        if (obj.name !== "StatusDetail") { console.log(`MISSING in SDK: ${tsName}`); bad++; }
      } else {
        for (const f of obj.fieldsArray) {
          const want = (f.id << 3) | wireType(f);
          const got = tags.get(camel(f.name));
          checked++;
          if (got !== want) {
            console.log(`MISMATCH ${tsName}.${f.name}: ours tag ${want} (field ${f.id}), SDK ${got}`);
            bad++;
          }
        }
      }
      visit(obj, tsName + "_");
    } else if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Service)) {
      visit(obj, "");
    }
  }
}
visit(root, "");
console.log(`${checked} fields checked, ${bad} problems`);
process.exit(bad ? 1 : 0);
