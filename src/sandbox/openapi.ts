/**
 * GitHub's official OpenAPI description (api.github.com, from
 * @octokit/openapi) as a router and validator: which operation a request
 * is, whether its parameters and body are valid, and whether a response
 * has the documented shape.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

type JsonSchema = Record<string, unknown>;
type ParameterObject = {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonSchema;
};
type OperationObject = {
  operationId: string;
  externalDocs?: { url: string };
  parameters?: (ParameterObject | { $ref: string })[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
  responses: Record<
    string,
    { content?: Record<string, { schema?: JsonSchema }> } | { $ref: string }
  >;
};
type OpenApiDocument = {
  paths: Record<string, Record<string, OperationObject>>;
  components: {
    parameters: Record<string, ParameterObject>;
    responses: Record<string, unknown>;
  } & Record<string, unknown>;
};

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const;
export type HttpMethod = (typeof methods)[number];

export type Operation = {
  operationId: string;
  method: HttpMethod;
  /** The path template, e.g. /repos/{owner}/{repo}/git/refs/{ref} */
  template: string;
  documentationUrl: string;
};

export type MatchedRequest = { operation: Operation; params: Record<string, string> };

export type RequestCheck =
  | { ok: true; params: Record<string, unknown>; query: Record<string, unknown>; body: unknown }
  | { ok: false; status: 400 | 422; message: string };

type CompiledOperation = Operation & {
  pattern: RegExp;
  greedyPattern: RegExp | undefined;
  paramNames: string[];
  literalSegments: number;
  object: OperationObject;
  checks?: {
    path: ValidateFunction;
    query: ValidateFunction;
    body: ValidateFunction | undefined;
    bodyRequired: boolean;
  };
  /** Per status: whether GitHub documents it, and the validator of its JSON body if it has one. */
  responseChecks: Map<string, { documented: boolean; check: ValidateFunction | null }>;
};

export type OpenApi = {
  /** The operation for a method and a raw (still percent-encoded) path below the API base. */
  match(method: string, rawPath: string): MatchedRequest | { pathKnown: boolean };
  checkRequest(
    matched: MatchedRequest,
    query: Record<string, string>,
    rawBody: string | undefined,
  ): RequestCheck;
  /** Problems with a response body for an operation and status; empty when it is as documented. */
  checkResponse(operation: Operation, status: number, body: unknown): string[];
  /** Problems with a value against a named component schema, e.g. 'check-run'. */
  checkComponent(name: string, value: unknown): string[];
  /** Problems with a value against any JSON schema whose refs point into the description. */
  compile(schema: JsonSchema): ValidateFunction;
};

let cached: OpenApi | undefined;

/** Loads and indexes the description once per process: it is 13 MB of immutable data. */
export function loadOpenApi(): OpenApi {
  cached ??= createOpenApi(
    JSON.parse(
      readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8'),
    ) as OpenApiDocument,
  );
  return cached;
}

function createOpenApi(described: OpenApiDocument): OpenApi {
  const document: OpenApiDocument = {
    ...described,
    components: normalizeNullable(described.components) as OpenApiDocument['components'],
  };
  const newAjv = (coerceTypes: boolean) => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, coerceTypes });
    addFormats(ajv);
    ajv.addSchema({ components: document.components }, 'github');
    return ajv;
  };
  const ajv = newAjv(false);
  const components = componentsByTitle(document);
  // Path and query parameters arrive as strings.
  const coercing = newAjv(true);

  const operations: CompiledOperation[] = [];
  for (const [template, item] of Object.entries(document.paths)) {
    for (const method of methods) {
      const object = item[method];
      if (!object) continue;
      operations.push(compileRoute(template, method, object));
    }
  }
  // Literal segments first: /git/refs/{ref} before /{path} style catch-alls.
  operations.sort((a, b) => b.literalSegments - a.literalSegments);

  const resolveParameter = (p: ParameterObject | { $ref: string }): ParameterObject =>
    '$ref' in p ? document.components.parameters[p.$ref.split('/').pop()!]! : p;

  function prepareChecks(op: CompiledOperation) {
    if (op.checks) return op.checks;
    const parameters = (op.object.parameters ?? []).map(resolveParameter);
    const objectSchema = (location: 'path' | 'query') => {
      const selected = parameters.filter((p) => p.in === location);
      return {
        type: 'object',
        properties: Object.fromEntries(selected.map((p) => [p.name, rebase(p.schema ?? {})])),
        required: selected.filter((p) => p.required).map((p) => p.name),
      };
    };
    const bodySchema = op.object.requestBody?.content?.['application/json']?.schema;
    op.checks = {
      path: coercing.compile(objectSchema('path')),
      query: coercing.compile(objectSchema('query')),
      body: bodySchema ? ajv.compile(rebase(bodySchema)) : undefined,
      bodyRequired: op.object.requestBody?.required ?? false,
    };
    return op.checks;
  }

  return {
    match(method, rawPath) {
      const lower = method.toLowerCase();
      let pathKnown = false;
      for (const greedy of [false, true]) {
        for (const op of operations) {
          const pattern = greedy ? op.greedyPattern : op.pattern;
          const found = pattern?.exec(rawPath);
          if (!found) continue;
          pathKnown = true;
          if (op.method !== lower) continue;
          const params = Object.fromEntries(
            op.paramNames.map((name, i) => [name, safeDecode(found[i + 1] ?? '')]),
          );
          return { operation: op, params };
        }
        if (pathKnown) break;
      }
      return { pathKnown };
    },

    checkRequest(matched, query, rawBody) {
      const op = matched.operation as CompiledOperation;
      const checks = prepareChecks(op);
      const params: Record<string, unknown> = { ...matched.params };
      if (!checks.path(params)) {
        return { ok: false, status: 422, message: invalid(checks.path.errors, op) };
      }
      const coercedQuery: Record<string, unknown> = { ...query };
      if (!checks.query(coercedQuery)) {
        return { ok: false, status: 422, message: invalid(checks.query.errors, op) };
      }
      let body: unknown;
      if (rawBody !== undefined && rawBody.trim() !== '') {
        try {
          body = JSON.parse(rawBody);
        } catch {
          return { ok: false, status: 400, message: 'Problems parsing JSON' };
        }
      }
      if (checks.body) {
        if (body === undefined && checks.bodyRequired) {
          return { ok: false, status: 422, message: 'Invalid request.\n\nNo body was supplied.' };
        }
        if (body !== undefined && !checks.body(body)) {
          return { ok: false, status: 422, message: invalid(checks.body.errors, op) };
        }
      }
      return { ok: true, params, query: coercedQuery, body };
    },

    checkResponse(operation, status, body) {
      const op = operation as CompiledOperation;
      const key = String(status);
      let entry = op.responseChecks.get(key);
      if (!entry) {
        let response = op.object.responses[key] ?? op.object.responses.default;
        if (response && '$ref' in response) {
          response = document.components.responses[
            response.$ref.split('/').pop()!
          ] as typeof response;
        }
        const schema =
          response && !('$ref' in response)
            ? response.content?.['application/json']?.schema
            : undefined;
        entry = {
          documented: response !== undefined,
          check: schema ? ajv.compile(rebase(preferComponents(schema, components))) : null,
        };
        op.responseChecks.set(key, entry);
      }
      if (!entry.documented) return [`status ${status} is not documented for ${op.operationId}`];
      if (!entry.check || entry.check(body)) return [];
      return describe(entry.check.errors);
    },

    checkComponent(name, value) {
      const check = ajv.getSchema(`github#/components/schemas/${name}`);
      if (!check) return [`no component schema named ${name}`];
      return check(value) ? [] : describe(check.errors);
    },

    compile: (schema) => ajv.compile(rebase(schema)),
  };
}

function compileRoute(
  template: string,
  method: HttpMethod,
  object: OperationObject,
): CompiledOperation {
  const paramNames: string[] = [];
  const segments = template.split('/').slice(1);
  const parts = segments.map((segment) =>
    segment.replace(
      /\{([^}]+)\}|([^{]+)/g,
      (_all, name: string | undefined, literal: string | undefined) => {
        if (name) {
          paramNames.push(name);
          return '([^/]+)';
        }
        return escapeRegExp(literal!);
      },
    ),
  );
  const source = `^/${parts.join('/')}/?$`;
  // These final parameters may hold slashes when the client did not encode them.
  const greedy =
    parts.at(-1) === '([^/]+)' && ['ref', 'path', 'basehead'].includes(paramNames.at(-1) ?? '');
  const greedySource = greedy ? `^/${[...parts.slice(0, -1), '(.+)'].join('/')}/?$` : undefined;
  return {
    operationId: object.operationId,
    method,
    template,
    documentationUrl: object.externalDocs?.url ?? 'https://docs.github.com/rest',
    pattern: new RegExp(source),
    greedyPattern: greedySource ? new RegExp(greedySource) : undefined,
    paramNames,
    literalSegments: segments.filter((s) => !s.includes('{')).length,
    object,
    responseChecks: new Map(),
  };
}

/** Component schema names by title, for the titles that name exactly one component. */
function componentsByTitle(document: OpenApiDocument): Map<string, string> {
  const byTitle = new Map<string, string | null>();
  const schemas = (document.components.schemas ?? {}) as Record<string, { title?: string }>;
  for (const [name, schema] of Object.entries(schemas)) {
    if (!schema.title) continue;
    byTitle.set(schema.title, byTitle.has(schema.title) ? null : name);
  }
  return new Map([...byTitle].flatMap(([title, name]) => (name ? [[title, name]] : [])));
}

/**
 * Some path responses carry inline copies of component schemas that differ
 * from the component, e.g. Installation's account as allOf [user,
 * enterprise], which no response could satisfy. The component is what
 * GitHub documents, so validate against it.
 */
function preferComponents(schema: JsonSchema, components: Map<string, string>): JsonSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!node || typeof node !== 'object') return node;
    const record = node as Record<string, unknown>;
    const component = typeof record.title === 'string' ? components.get(record.title) : undefined;
    if (component) return { $ref: `#/components/schemas/${component}` };
    return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, walk(value)]));
  };
  return walk(schema) as JsonSchema;
}

/** Points a schema's local refs (#/components/…) at the registered description. */
function rebase(schema: JsonSchema): JsonSchema {
  return normalizeNullable(
    JSON.parse(JSON.stringify(schema).replace(/"\$ref":"#\//g, '"$ref":"github#/')),
  ) as JsonSchema;
}

/**
 * OpenAPI 3.0's `nullable` as JSON Schema: an enum that is nullable admits
 * null (GitHub sends `conclusion: null`), and `nullable` without a `type`
 * (which Ajv refuses) becomes anyOf with null.
 */
function normalizeNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(normalizeNullable);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = normalizeNullable(value);
  if (out.nullable !== true) return out;
  if (Array.isArray(out.enum) && !out.enum.includes(null))
    out.enum = [...(out.enum as unknown[]), null];
  if (out.type !== undefined) return out;
  const { nullable: _, ...rest } = out;
  return { anyOf: [rest, { type: 'null' }] };
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`);
}

/** GitHub's wording for a 422: "Invalid request." and one line per problem. */
function invalid(errors: ErrorObject[] | null | undefined, op: CompiledOperation): string {
  const lines = (errors ?? []).map((e) => {
    if (e.keyword === 'required') return `"${String(e.params.missingProperty)}" wasn't supplied.`;
    const at = e.instancePath
      ? `For '${e.instancePath.slice(1).replace(/\//g, '/')}'`
      : 'For the request';
    return `${at}, ${e.message ?? 'the value is invalid'}.`;
  });
  return `Invalid request.\n\n${[...new Set(lines)].join('\n')}\n\nSee ${op.documentationUrl}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
