/**
 * Checks real responses against `api/openapi.yaml`: the status must be documented for the
 * operation (or be the document's 404/405 answer for unknown paths and methods), the content
 * type must be one the document names, the body must match its schema, and required headers
 * must be present. Schemas are looked up by JSON pointer inside the registered document, so
 * `$ref: '#/components/…'` resolves exactly as the document means it.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { loadOpenApiDocument, openApiAjv, OPENAPI_ID } from '../../src/http/openapi.js';

interface ResponseObject {
  readonly description?: string;
  readonly headers?: Record<string, { readonly required?: boolean }>;
  readonly content?: Record<string, { readonly schema?: unknown }>;
  readonly $ref?: string;
}

interface Operation {
  readonly responses: Record<string, ResponseObject>;
}

export interface ObservedResponse {
  readonly method: string;
  /** Path without query string. */
  readonly path: string;
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

const document = loadOpenApiDocument() as {
  paths: Record<string, Record<string, Operation>>;
  components: { responses: Record<string, ResponseObject> };
};
const ajv = openApiAjv(document);
const compiled = new Map<string, ValidateFunction>();

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

function pointerSegment(segment: string): string {
  return encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));
}

function schemaAt(segments: readonly string[]): ValidateFunction {
  const ref = `${OPENAPI_ID}#/${segments.map(pointerSegment).join('/')}`;
  let validate = compiled.get(ref);
  if (!validate) {
    validate = ajv.getSchema(ref);
    if (!validate) throw new Error(`the OpenAPI document has no schema at ${ref}`);
    compiled.set(ref, validate);
  }
  return validate;
}

/** The documented response and the JSON pointer segments where it lives in the document. */
function documentedResponse(observed: ObservedResponse): { response: ResponseObject; at: string[] } {
  const match = templates.find((t) => t.pattern.test(observed.path));
  if (!match) {
    if (observed.status !== 404)
      throw new Error(`${observed.path} is not in the document, yet answered ${observed.status}`);
    return { response: document.components.responses.NotFound!, at: ['components', 'responses', 'NotFound'] };
  }
  const method = observed.method.toLowerCase() === 'head' ? 'get' : observed.method.toLowerCase();
  const operation = document.paths[match.template]![method];
  if (!operation) {
    if (observed.status !== 405)
      throw new Error(
        `${observed.method} ${match.template} is not documented, yet answered ${observed.status}`,
      );
    return {
      response: document.components.responses.MethodNotAllowed!,
      at: ['components', 'responses', 'MethodNotAllowed'],
    };
  }
  const key = [String(observed.status), `${String(observed.status)[0]}XX`, 'default'].find(
    (k) => k in operation.responses,
  );
  if (key === undefined) {
    throw new Error(`${observed.method} ${match.template} does not document status ${observed.status}`);
  }
  const response = operation.responses[key]!;
  if (response.$ref) {
    const name = response.$ref.replace('#/components/responses/', '');
    return { response: document.components.responses[name]!, at: ['components', 'responses', name] };
  }
  return { response, at: ['paths', match.template, method, 'responses', key] };
}

/** Throws an Error naming every way the response departs from the document. */
export function assertMatchesOpenApi(observed: ObservedResponse): void {
  const { response, at } = documentedResponse(observed);
  const where = `${observed.method} ${observed.path} → ${observed.status}`;
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    if (header.required && !observed.headers.has(name))
      throw new Error(`${where}: header ${name} is missing`);
  }
  const content = response.content;
  if (!content) {
    if (observed.text !== '') throw new Error(`${where}: the document describes no body, yet one came`);
    return;
  }
  if (observed.method.toUpperCase() === 'HEAD') return;
  const contentType = (observed.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!(contentType in content)) {
    throw new Error(
      `${where}: content type ${contentType || '(none)'} is not one of ${Object.keys(content).join(', ')}`,
    );
  }
  let body: unknown = observed.text;
  if (contentType.endsWith('json')) {
    try {
      body = JSON.parse(observed.text) as unknown;
    } catch {
      throw new Error(`${where}: the body is not JSON`);
    }
  }
  if (content[contentType]!.schema === undefined) return;
  const validate = schemaAt([...at, 'content', contentType, 'schema']);
  if (!validate(body)) {
    throw new Error(`${where}: the body does not match the document: ${JSON.stringify(validate.errors)}`);
  }
}
