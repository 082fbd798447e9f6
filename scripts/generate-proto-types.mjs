// Writes the TypeScript types of the API messages from proto/ (the one source of the API), so the
// gRPC controllers, the wire codecs and the REST encoders cannot drift from the protos.
// Usage: node scripts/generate-proto-types.mjs            rewrites the generated file
//        node scripts/generate-proto-types.mjs --stdout   prints what it would write
// Built on protobufjs's reflection (already a dependency): no protoc, nothing downloaded.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as prettier from 'prettier';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PROTO_ROOT = join(ROOT, 'proto');
const PROTO_FILES = [
  'api/v1/challenge/challenge.proto',
  'api/v1/instance/instance.proto',
  'api/v1/flag/flag.proto',
  'api/v1/event/event.proto',
];
export const OUTPUT = join(ROOT, 'src', 'shared', 'transport', 'api-messages.generated.ts');

/** The API packages whose messages, enums and services are written. */
const PACKAGES = ['api.v1.challenge', 'api.v1.instance', 'api.v1.flag', 'api.v1.event'];

/** Well-known types, as our proto-loader options and protojson carry them. */
const WELL_KNOWN = {
  '.google.protobuf.Duration': {
    name: 'Duration',
    grpc: '{ seconds: string; nanos: number }',
    json: 'string',
    doc: 'google.protobuf.Duration: `{seconds, nanos}` on gRPC, `"600s"` in JSON.',
  },
  '.google.protobuf.Timestamp': {
    name: 'Timestamp',
    grpc: '{ seconds: string; nanos: number }',
    json: 'string',
    doc: 'google.protobuf.Timestamp: `{seconds, nanos}` on gRPC, RFC 3339 in JSON.',
  },
  '.google.protobuf.FieldMask': {
    name: 'FieldMask',
    grpc: '{ paths: string[] }',
    json: 'string',
    doc: 'google.protobuf.FieldMask: proto paths on gRPC, one comma-separated string of lowerCamelCase paths in JSON.',
  },
  '.google.protobuf.Empty': {
    name: 'Empty',
    grpc: 'Record<string, never>',
    json: 'Record<string, never>',
    doc: 'google.protobuf.Empty.',
  },
};

/** Scalars: [gRPC object type with `longs: String`, protojson type]. */
const SCALARS = {
  string: ['string', 'string'],
  bytes: ['Buffer', 'string'],
  bool: ['boolean', 'boolean'],
  double: ['number', 'number'],
  float: ['number', 'number'],
  int32: ['number', 'number'],
  uint32: ['number', 'number'],
  sint32: ['number', 'number'],
  fixed32: ['number', 'number'],
  sfixed32: ['number', 'number'],
  int64: ['string', 'string'],
  uint64: ['string', 'string'],
  sint64: ['string', 'string'],
  fixed64: ['string', 'string'],
  sfixed64: ['string', 'string'],
};

/** The lowerCamelCase JSON name protoc gives a field (`update_mask` → `updateMask`). */
export const jsonName = (name) => name.replace(/_([a-z0-9])/g, (_m, c) => c.toUpperCase());

const lowerFirst = (s) => s.charAt(0).toLowerCase() + s.slice(1);

/** Loads the API protos with their comments, the way the service's loader resolves imports. */
export function loadApi() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    const local = join(PROTO_ROOT, target);
    // google/protobuf/*: protobufjs's bundled copies, as proto-loader uses.
    return existsSync(local) ? local : target;
  };
  root.loadSync(PROTO_FILES, { keepCase: true, alternateCommentMode: true });
  root.resolveAll();
  return root;
}

/** Words of `line` in lines of at most `width` characters (a longer word stays whole). */
function wrap(line, width) {
  const lines = [];
  let current = '';
  for (const word of line.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  return [...lines, current];
}

const PRINT_WIDTH = 100;

function docComment(text, indent = '') {
  if (!text) return '';
  const width = PRINT_WIDTH - indent.length - ' * '.length;
  const lines = text
    .trim()
    .split('\n')
    .flatMap((l) => wrap(l, width));
  if (lines.length === 1 && indent.length + lines[0].length + 7 <= PRINT_WIDTH) {
    return `${indent}/** ${lines[0]} */\n`;
  }
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join('\n')}\n${indent} */\n`;
}

function typeName(type) {
  const wk = WELL_KNOWN[type.fullName];
  if (wk) return wk.name;
  if (!PACKAGES.includes(type.parent.fullName.slice(1))) {
    throw new Error(`${type.fullName}: only the API packages and well-known types are supported`);
  }
  return type.name;
}

/** A proto3 `optional` field: explicit presence, no default filled in, absent when unset. */
const isProto3Optional = (field) => field.options?.proto3_optional === true;

function valueType(field, form) {
  const index = form === 'grpc' ? 0 : 1;
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = typeName(field.resolvedType);
    // An enum number this build does not know reaches a gRPC server as a number (open enums).
    return form === 'grpc' ? `${name} | number` : name;
  }
  if (field.resolvedType instanceof protobuf.Type) {
    return `${typeName(field.resolvedType)}${form === 'grpc' ? 'Grpc' : 'Json'}`;
  }
  const scalar = SCALARS[field.type];
  if (!scalar) throw new Error(`${field.fullName}: unsupported type ${field.type}`);
  return scalar[index];
}

function fieldLine(field, form) {
  // proto-loader's keepCase: false gives the same lowerCamelCase names as protojson.
  const name = jsonName(field.name);
  let type;
  let optional = false;
  if (field.map) {
    type = `Record<string, ${valueType(field, form)}>`;
  } else if (field.repeated) {
    type = `${valueType(field, form)}[]`;
  } else if (isProto3Optional(field)) {
    type = valueType(field, form);
    optional = true;
  } else if (field.resolvedType instanceof protobuf.Type) {
    // Unset messages are `null`: proto-loader's `defaults`, protojson's EmitUnpopulated.
    type = `${valueType(field, form)} | null`;
  } else {
    type = valueType(field, form);
  }
  const doc = [
    `\`${field.name} = ${field.id}\`${field.comment ? `: ${field.comment.trim()}` : ''}`,
    field.options?.deprecated === true ? '@deprecated' : '',
  ]
    .filter(Boolean)
    .join('\n');
  return `${docComment(doc, '  ')}  ${name}${optional ? '?' : ''}: ${type};\n`;
}

function renderMessage(type) {
  const name = typeName(type);
  const full = type.fullName.slice(1);
  let out = '';
  for (const form of ['grpc', 'json']) {
    const what =
      form === 'grpc'
        ? 'as proto-loader decodes it and grpc-js encodes it (our loader options)'
        : 'in protojson, as the REST API writes it (EmitUnpopulated)';
    out += docComment(`${full} ${what}.${type.comment ? `\n\n${type.comment.trim()}` : ''}`);
    const suffix = form === 'grpc' ? 'Grpc' : 'Json';
    const fields = type.fieldsArray;
    if (fields.length === 0) {
      out += `export type ${name}${suffix} = Record<string, never>;\n\n`;
      continue;
    }
    out += `export interface ${name}${suffix} {\n${fields.map((f) => fieldLine(f, form)).join('')}}\n\n`;
  }
  return out;
}

const constantCase = (name) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** Proto paths into `type` as FieldMask's IsValid accepts them: fields, then singular messages' fields. */
function fieldPaths(type, prefix = '', depth = 0) {
  if (depth > 8) throw new Error(`${type.fullName}: message nesting too deep for field paths`);
  return type.fieldsArray.flatMap((f) => {
    const path = `${prefix}${f.name}`;
    const nested =
      f.resolvedType instanceof protobuf.Type && !f.map && !f.repeated
        ? fieldPaths(f.resolvedType, `${path}.`, depth + 1)
        : [];
    return [path, ...nested];
  });
}

/** For a message that carries a FieldMask: the paths a mask on it may name. */
function renderMaskPaths(type) {
  const carriesMask = type.fieldsArray.some(
    (f) => f.resolvedType?.fullName === '.google.protobuf.FieldMask',
  );
  if (!carriesMask) return '';
  return (
    docComment(
      `Every proto path FieldMask's IsValid accepts for ${type.fullName.slice(1)} (its fields, and the fields of its singular message fields).`,
    ) +
    `export const ${constantCase(type.name)}_FIELD_PATHS = [${fieldPaths(type)
      .map((p) => `'${p}'`)
      .join(', ')}] as const;\n\n`
  );
}

function renderEnum(e) {
  const name = typeName(e);
  const entries = Object.entries(e.values).sort((a, b) => a[1] - b[1]);
  entries.forEach(([, n], i) => {
    if (n !== i) throw new Error(`${e.fullName}: values must be numbered 0, 1, 2, …`);
  });
  const constName = constantCase(name);
  return (
    docComment(
      `${e.fullName.slice(1)}: value names, indexed by number (protojson writes and reads the names).${e.comment ? `\n\n${e.comment.trim()}` : ''}`,
    ) +
    `export const ${constName}_VALUES = [${entries.map(([k]) => `'${k}'`).join(', ')}] as const;\n\n` +
    `export type ${name} = (typeof ${constName}_VALUES)[number];\n\n`
  );
}

function renderService(service) {
  const full = service.fullName.slice(1);
  let out = docComment(
    `${full} handlers over gRPC: one method per RPC, named as Nest's \`@GrpcMethod\` calls it.`,
  );
  out += `export interface ${service.name}GrpcHandlers {\n`;
  for (const method of service.methodsArray) {
    const req = `${typeName(method.resolvedRequestType)}Grpc`;
    const res = `${typeName(method.resolvedResponseType)}Grpc`;
    if (method.requestStream) throw new Error(`${method.fullName}: client streams unsupported`);
    const result = method.responseStream ? `Observable<${res}>` : `Promise<${res}>`;
    out += docComment(
      `\`${method.name}\`${method.comment ? `: ${method.comment.trim()}` : ''}`,
      '  ',
    );
    out += `  ${lowerFirst(method.name)}(request: ${req}): ${result};\n`;
  }
  return `${out}}\n\n`;
}

/** The generated file's text (formatted as the repository's Prettier settings say). */
export async function render() {
  const root = loadApi();
  let body = '';
  for (const wk of Object.values(WELL_KNOWN)) {
    body += docComment(wk.doc);
    body += wk.grpc.startsWith('{')
      ? `export interface ${wk.name}Grpc ${wk.grpc}\n`
      : `export type ${wk.name}Grpc = ${wk.grpc};\n`;
    body += `export type ${wk.name}Json = ${wk.json};\n\n`;
  }
  for (const pkg of PACKAGES) {
    const ns = root.lookup(pkg);
    body += `// ${'-'.repeat(93)}\n// ${pkg}\n\n`;
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Enum) body += renderEnum(nested);
    }
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) body += renderMessage(nested) + renderMaskPaths(nested);
    }
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Service) body += renderService(nested);
    }
  }
  const header =
    `// Generated from ${PROTO_FILES.map((f) => `proto/${f}`).join(', ')}\n` +
    '// by scripts/generate-proto-types.mjs. Do not edit: change the protos, then run\n' +
    '// `npm run generate:proto`.\n\n' +
    "import type { Observable } from 'rxjs';\n\n";
  const options = (await prettier.resolveConfig(OUTPUT)) ?? {};
  return prettier.format(header + body, { ...options, filepath: OUTPUT });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = await render();
  if (process.argv.includes('--stdout')) {
    process.stdout.write(text);
  } else {
    const before = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : '';
    if (before !== text) writeFileSync(OUTPUT, text);
    console.log(`${relative(ROOT, OUTPUT)} ${before === text ? 'unchanged' : 'written'}`);
  }
}
