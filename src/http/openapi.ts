/**
 * The OpenAPI document (`api/openapi.yaml`) is the single source of the API's schemas: the intake
 * validates requests with the very schemas the document publishes, and the document is served
 * as JSON from the same parse.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import { parse } from 'yaml';
import { AmtError, type Problem } from '../errors.js';
import { jsonPointer } from '../json-text.js';

/** Base URI under which the document is registered, so `#/components/schemas/…` resolves. */
export const OPENAPI_ID = 'https://amtsbote.de/api/openapi.json';

/** OpenAPI's own keywords: the document's top level, and the Schema Object's base vocabulary. */
const OPENAPI_KEYWORDS = [
  'openapi',
  'info',
  'jsonSchemaDialect',
  'servers',
  'paths',
  'webhooks',
  'components',
  'security',
  'tags',
  'externalDocs',
  'discriminator',
  'xml',
  'example',
];

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  addFormatsModule) as unknown as FormatsPlugin;

/** Finds `api/openapi.yaml` above this module (works from `src/http` and from `dist/src/http`). */
export function locateOpenApiFile(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'api', 'openapi.yaml');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new AmtError('AMT_INTERNAL', 'api/openapi.yaml was not found next to the installation');
    dir = parent;
  }
}

export type OpenApiDocument = Readonly<Record<string, unknown>>;

const documents = new Map<string, OpenApiDocument>();

/** Parses the document once per process; it is part of the installation and does not change. */
export function loadOpenApiDocument(file = locateOpenApiFile()): OpenApiDocument {
  let document = documents.get(file);
  if (!document) {
    document = deepFreeze(parse(readFileSync(file, 'utf8')) as OpenApiDocument);
    documents.set(file, document);
  }
  return document;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** An Ajv instance that knows the whole document under OPENAPI_ID. */
export function openApiAjv(document: OpenApiDocument): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
  addFormats(ajv);
  ajv.addVocabulary(OPENAPI_KEYWORDS);
  ajv.addSchema({ ...document, $id: OPENAPI_ID });
  return ajv;
}

export function componentSchema(ajv: Ajv2020, name: string): ValidateFunction {
  const validate = ajv.getSchema(`${OPENAPI_ID}#/components/schemas/${name}`);
  if (!validate) throw new AmtError('AMT_INTERNAL', `the OpenAPI document has no schema ${name}`);
  return validate;
}

/** The request schemas the HTTP layer validates against, compiled once. */
export interface RequestValidators {
  readonly application: ValidateFunction;
  readonly applicationForm: ValidateFunction;
  readonly attachmentMetadata: ValidateFunction;
  readonly replayRequest: ValidateFunction;
  readonly statusReport: ValidateFunction;
}

const validatorCache = new WeakMap<OpenApiDocument, RequestValidators>();

/** Compiled once per document (compiling is far slower than validating). */
export function requestValidators(document: OpenApiDocument): RequestValidators {
  let validators = validatorCache.get(document);
  if (!validators) {
    const ajv = openApiAjv(document);
    validators = {
      application: componentSchema(ajv, 'Application'),
      applicationForm: componentSchema(ajv, 'ApplicationForm'),
      attachmentMetadata: componentSchema(ajv, 'AttachmentMetadata'),
      replayRequest: componentSchema(ajv, 'ReplayRequest'),
      statusReport: componentSchema(ajv, 'StatusReport'),
    };
    validatorCache.set(document, validators);
  }
  return validators;
}

/** ajv's errors as problems with JSON pointers into the request, one per place and complaint. */
export function validationProblems(
  errors: readonly ErrorObject[] | null | undefined,
  prefix = '',
): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const e of errors ?? []) {
    // The branches of a oneOf report their own errors; the summary line adds nothing.
    if (e.keyword === 'oneOf' || e.keyword === 'allOf' || e.keyword === 'if') continue;
    let where = e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
      const params = e.params as { additionalProperty?: string; unevaluatedProperty?: string };
      where = `${e.instancePath}${jsonPointer([params.additionalProperty ?? params.unevaluatedProperty ?? ''])}`;
      message = 'is not allowed here';
    } else if (e.keyword === 'required') {
      where = `${e.instancePath}${jsonPointer([(e.params as { missingProperty: string }).missingProperty])}`;
      message = 'is required';
    }
    where = prefix + where;
    const key = `${where}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ path: where === '' ? '/' : where, message });
  }
  return problems;
}
