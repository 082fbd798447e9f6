import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import protobuf from 'protobufjs';
import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { ChallengeStoreHttpController } from '../../src/challenge-store/transport/challenge-store.http.controller';
import { FlagCheckerHttpController } from '../../src/flag-checker/transport/flag-checker.http.controller';
import { EventsHttpController } from '../../src/events/transport/events.http.controller';
import { InstanceManagerHttpController } from '../../src/instance-manager/transport/instance-manager.http.controller';
import { snakeToCamel } from '../../src/shared/transport/protojson';
import { SWAGGER_DOCUMENT } from '../../src/shared/transport/swagger/swagger.document';
import { loadApi } from '../../scripts/generate-proto-types.mjs';

/**
 * The Swagger document is written by hand; these checks hold it to the protos (the one source of
 * the API) and to the routes the REST controllers really register.
 */

type Schema = Record<string, unknown>;
interface Operation {
  operationId: string;
  parameters?: Schema[];
  responses: Record<string, { schema: Schema }>;
}
type Document = {
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, Schema>;
};

/** An RPC's REST binding, as its proto comment states it: `// POST /api/v1/challenge (body *)`. */
interface Binding {
  operationId: string;
  method: string;
  path: string;
  body: boolean;
  /** Served as Server-Sent Events: each event's data is one response message. */
  sse: boolean;
  rpc: protobuf.Method;
}

const API_SERVICES = [
  'api.v1.challenge.ChallengeStore',
  'api.v1.instance.InstanceManager',
  'api.v1.flag.FlagChecker',
  'api.v1.event.EventStream',
];

function bindingsOf(root: protobuf.Root): Binding[] {
  const bindings: Binding[] = [];
  for (const name of API_SERVICES) {
    const service = root.lookupService(name);
    for (const rpc of service.methodsArray) {
      const m =
        /^(GET|POST|PATCH|PUT|DELETE) (\/[^\s?]*)(?:\?\S*)?( \(body \*\))?( \(Server-Sent Events\))?$/.exec(
          (rpc.comment ?? '').trim(),
        );
      if (!m) throw new Error(`${rpc.fullName}: no "METHOD /path" comment`);
      bindings.push({
        operationId: `${service.name}_${rpc.name}`,
        method: m[1]!.toLowerCase(),
        // Path variables are written with proto names; the gateway's Swagger uses JSON names.
        path: m[2]!.replace(/\{(\w+)\}/g, (_all, v: string) => `{${snakeToCamel(v)}}`),
        body: m[3] !== undefined,
        sse: m[4] !== undefined,
        rpc,
      });
    }
  }
  return bindings;
}

/** `METHOD /path` of every route a REST controller registers, but its 501 fallback (`@All`). */
function controllerRoutes(controllers: (new (...args: never[]) => object)[]): string[] {
  const routes: string[] = [];
  for (const controller of controllers) {
    const base = Reflect.getMetadata(PATH_METADATA, controller) as string;
    const proto = controller.prototype as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(proto)) {
      const handler = proto[key];
      if (typeof handler !== 'function') continue;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (method === undefined || method === RequestMethod.ALL) continue;
      const paths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[];
      for (const path of Array.isArray(paths) ? paths : [paths]) {
        const full = `/${[base, path]
          .map((p) => p.replace(/^\/+|\/+$/g, ''))
          .filter((p) => p !== '')
          .join('/')}`;
        routes.push(`${RequestMethod[method]} ${full.replace(/:(\w+)/g, '{$1}')}`);
      }
    }
  }
  return routes.sort();
}

function swaggerRoutes(doc: Document): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

const WELL_KNOWN: Record<string, Schema> = {
  '.google.protobuf.Timestamp': { type: 'string', format: 'date-time' },
  '.google.protobuf.Duration': { type: 'string' },
  '.google.protobuf.FieldMask': { type: 'string' },
};

const SCALARS: Record<string, Schema> = {
  string: { type: 'string' },
  bool: { type: 'boolean' },
  int32: { type: 'integer', format: 'int32' },
  int64: { type: 'string', format: 'int64' },
  uint64: { type: 'string', format: 'uint64' },
};

/**
 * Every difference between the Swagger document and the protos (messages field by field, with
 * protojson's lowerCamelCase names and types) and between the document and the controllers'
 * routes (both ways). Empty when they agree.
 */
function problemsOf(root: protobuf.Root, doc: Document, routes: string[]): string[] {
  const problems: string[] = [];
  const checked = new Set<string>();

  const deref = (schema: Schema, where: string): [string | undefined, Schema | undefined] => {
    const ref = schema.$ref;
    if (typeof ref !== 'string') return [undefined, schema];
    const name = ref.replace('#/definitions/', '');
    const def = doc.definitions[name];
    if (!def) problems.push(`${where}: ${ref} is not defined`);
    return [name, def];
  };

  /** The definition name protoc-gen-openapiv2 gives a message: last package segment + name. */
  const definitionName = (type: protobuf.ReflectionObject): string =>
    `${type.parent!.name}${type.name}`;

  const valueSchema = (field: protobuf.Field, schema: Schema | undefined, where: string): void => {
    if (schema === undefined) {
      problems.push(`${where}: missing`);
      return;
    }
    const resolved = field.resolvedType;
    const wellKnown = resolved ? WELL_KNOWN[resolved.fullName] : undefined;
    if (wellKnown) {
      const got = {
        type: schema.type,
        ...(schema.format !== undefined && { format: schema.format }),
      };
      if (JSON.stringify(got) !== JSON.stringify(wellKnown)) {
        problems.push(`${where}: ${JSON.stringify(got)} for ${resolved!.fullName}`);
      }
      return;
    }
    if (resolved instanceof protobuf.Enum || resolved instanceof protobuf.Type) {
      const expected = `#/definitions/${definitionName(resolved)}`;
      if (schema.$ref !== expected) {
        problems.push(`${where}: ${String(schema.$ref)} instead of ${expected}`);
        return;
      }
      const [, def] = deref(schema, where);
      if (!def) return;
      if (resolved instanceof protobuf.Enum) {
        const names = Object.keys(resolved.values);
        if (JSON.stringify(def.enum) !== JSON.stringify(names)) {
          problems.push(
            `${expected}: enum ${JSON.stringify(def.enum)}, proto has ${names.join(',')}`,
          );
        }
      } else {
        messageSchema(resolved, def, expected, []);
      }
      return;
    }
    const scalar = SCALARS[field.type];
    if (!scalar) {
      problems.push(`${where}: no Swagger type known for proto type ${field.type}`);
      return;
    }
    const got = {
      type: schema.type,
      ...(schema.format !== undefined && { format: schema.format }),
    };
    if (JSON.stringify(got) !== JSON.stringify(scalar)) {
      problems.push(`${where}: ${JSON.stringify(got)} for proto ${field.type}`);
    }
  };

  const fieldSchema = (field: protobuf.Field, schema: Schema, where: string): void => {
    if (field.map) {
      if (schema.type !== 'object') problems.push(`${where}: a map must be an object`);
      valueSchema(field, schema.additionalProperties as Schema | undefined, `${where}{}`);
    } else if (field.repeated) {
      if (schema.type !== 'array') problems.push(`${where}: a repeated field must be an array`);
      valueSchema(field, schema.items as Schema | undefined, `${where}[]`);
    } else {
      valueSchema(field, schema, where);
    }
  };

  /** A message's schema: exactly its fields but `omitted` (path parameters), by JSON name. */
  function messageSchema(
    type: protobuf.Type,
    schema: Schema,
    where: string,
    omitted: string[],
  ): void {
    const key = `${where} ${type.fullName}`;
    if (checked.has(key)) return;
    checked.add(key);
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const fields = type.fieldsArray.filter((f) => !omitted.includes(snakeToCamel(f.name)));
    const expected = fields.map((f) => snakeToCamel(f.name));
    for (const name of expected) {
      if (!(name in properties)) problems.push(`${where}: no property ${name} (${type.fullName})`);
    }
    for (const name of Object.keys(properties)) {
      if (!expected.includes(name))
        problems.push(`${where}: ${name} is no field of ${type.fullName}`);
    }
    for (const name of (schema.required ?? []) as string[]) {
      if (!expected.includes(name)) problems.push(`${where}: required ${name} is no field`);
    }
    for (const field of fields) {
      const property = properties[snakeToCamel(field.name)];
      if (property) fieldSchema(field, property, `${where}.${snakeToCamel(field.name)}`);
    }
  }

  /** A top-level request or response: `{type: object}` for Empty, else a reference. */
  const topLevel = (
    type: protobuf.Type,
    schema: Schema,
    where: string,
    omitted: string[],
  ): void => {
    const [name, def] = deref(schema, where);
    if (!def) return;
    const empty = type.fieldsArray.every((f) => omitted.includes(snakeToCamel(f.name)));
    if (name === undefined) {
      if (!empty) problems.push(`${where}: inline schema for ${type.fullName}, which has fields`);
      messageSchema(type, def, where, omitted);
      return;
    }
    if (omitted.length === 0 && name !== definitionName(type)) {
      problems.push(`${where}: ${name} instead of ${definitionName(type)}`);
    }
    messageSchema(type, def, `#/definitions/${name}`, omitted);
  };

  const ours = swaggerRoutes(doc);
  for (const route of routes) {
    if (!ours.includes(route)) problems.push(`route ${route} is not in the Swagger paths`);
  }
  for (const route of ours) {
    if (!routes.includes(route)) problems.push(`Swagger path ${route} is no controller route`);
  }

  const bindings = bindingsOf(root);
  for (const route of ours) {
    const [method, path] = route.split(' ') as [string, string];
    const op = doc.paths[path]![method.toLowerCase()]!;
    const where = `${route} (${op.operationId})`;
    const binding = bindings.find((b) => b.operationId === op.operationId);
    if (!binding) {
      problems.push(`${where}: no RPC ${op.operationId} in the protos`);
      continue;
    }
    if (binding.method !== method.toLowerCase() || binding.path !== path) {
      problems.push(`${where}: the proto binds it to ${binding.method} ${binding.path}`);
    }
    const request = binding.rpc.resolvedRequestType!;
    const response = binding.rpc.resolvedResponseType!;
    const params = op.parameters ?? [];
    const pathVars = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const named = (place: string): string[] =>
      params.filter((p) => p.in === place).map((p) => String(p.name));
    if (JSON.stringify(named('path')) !== JSON.stringify(pathVars)) {
      problems.push(
        `${where}: path parameters ${named('path').join(',')}, path has ${pathVars.join(',')}`,
      );
    }
    for (const v of pathVars) {
      const field = request.fieldsArray.find((f) => snakeToCamel(f.name) === v);
      if (field?.type !== 'string')
        problems.push(`${where}: {${v}} is no string field of the request`);
    }
    const rest = request.fieldsArray
      .map((f) => snakeToCamel(f.name))
      .filter((f) => !pathVars.includes(f));
    const body = params.find((p) => p.in === 'body');
    if (binding.body) {
      if (!body) problems.push(`${where}: no body parameter`);
      else topLevel(request, body.schema as Schema, `${where} body`, pathVars);
    } else {
      if (body) problems.push(`${where}: a body the proto does not bind`);
      if (JSON.stringify(named('query')) !== JSON.stringify(rest)) {
        problems.push(
          `${where}: query parameters ${named('query').join(',')}, request has ${rest.join(',')}`,
        );
      }
    }
    const ok = op.responses['200']?.schema;
    if (!ok) {
      problems.push(`${where}: no 200 response`);
    } else if (binding.sse) {
      if (JSON.stringify((op as { produces?: string[] }).produces) !== '["text/event-stream"]')
        problems.push(`${where}: Server-Sent Events must produce text/event-stream`);
      topLevel(response, ok, `${where} 200`, []);
    } else if (binding.rpc.responseStream) {
      const props = (ok.properties ?? {}) as Record<string, Schema>;
      if (!props.result) problems.push(`${where}: a stream's 200 must wrap messages in result`);
      else topLevel(response, props.result, `${where} result`, []);
      if (props.error?.$ref !== '#/definitions/rpcStatus') {
        problems.push(`${where}: a stream's 200 must carry error as rpcStatus`);
      }
    } else {
      topLevel(response, ok, `${where} 200`, []);
    }
    if (op.responses.default?.schema.$ref !== '#/definitions/rpcStatus') {
      problems.push(`${where}: the default response must be rpcStatus`);
    }
  }
  for (const b of bindings) {
    if (!ours.includes(`${b.method.toUpperCase()} ${b.path}`)) {
      problems.push(`${b.operationId} (${b.method.toUpperCase()} ${b.path}) is not in Swagger`);
    }
  }
  return problems;
}

const CONTROLLERS = [
  ChallengeStoreHttpController,
  InstanceManagerHttpController,
  FlagCheckerHttpController,
  EventsHttpController,
];
const document = SWAGGER_DOCUMENT as unknown as Document;

describe('SWAGGER_DOCUMENT', () => {
  it('should list exactly the REST routes the controllers register, with their methods', () => {
    expect(swaggerRoutes(document)).toEqual(controllerRoutes(CONTROLLERS));
    expect(controllerRoutes(CONTROLLERS)).toHaveLength(12);
  });

  it('should agree with the protos on every route, parameter, field name and type', () => {
    expect(problemsOf(loadApi(), document, controllerRoutes(CONTROLLERS))).toEqual([]);
  });

  it('should report a field added to a proto message and not to Swagger', () => {
    const root = loadApi();
    root
      .lookupType('api.v1.instance.Instance')
      .add(new protobuf.Field('exposed_ports', 10, 'int64'));
    root
      .lookupType('api.v1.challenge.UpdateChallengeRequest')
      .add(new protobuf.Field('pool_ttl', 10, 'google.protobuf.Duration'));
    root.resolveAll();
    const problems = problemsOf(root, document, controllerRoutes(CONTROLLERS));
    expect(problems).toContain(
      '#/definitions/instanceInstance: no property exposedPorts (.api.v1.instance.Instance)',
    );
    expect(problems).toContain(
      '#/definitions/ChallengeStoreUpdateChallengeBody: no property poolTtl (.api.v1.challenge.UpdateChallengeRequest)',
    );
  });

  it('should report a property whose type differs from its proto field', () => {
    const doc = structuredClone(document);
    const instance = doc.definitions.instanceInstance as { properties: Record<string, Schema> };
    instance.properties.since = { type: 'string' };
    instance.properties.flags = { type: 'string' };
    const problems = problemsOf(loadApi(), doc, controllerRoutes(CONTROLLERS));
    expect(problems).toContain(
      '#/definitions/instanceInstance.since: {"type":"string"} for .google.protobuf.Timestamp',
    );
    expect(problems).toContain(
      '#/definitions/instanceInstance.flags: a repeated field must be an array',
    );
  });

  it('should report a controller route missing from Swagger and a Swagger path without a route', () => {
    const doc = structuredClone(document);
    const { patch } = doc.paths['/api/v1/challenge/{id}']!;
    delete doc.paths['/api/v1/challenge/{id}']!.patch;
    doc.paths['/api/v1/challenge/{id}']!.put = patch!;
    const problems = problemsOf(loadApi(), doc, controllerRoutes(CONTROLLERS));
    expect(problems).toContain('route PATCH /api/v1/challenge/{id} is not in the Swagger paths');
    expect(problems).toContain('Swagger path PUT /api/v1/challenge/{id} is no controller route');
  });
});
