/**
 * A compiled mapping as something to run: reads the source (JSON as is; XML through the guarded
 * namespace-aware reader, optionally validated), executes the target tree, serialises, and — as
 * a pipeline step — validates the output against its schema set. A mapping or validation
 * failure is always an error: the raw payload is never passed on.
 */
import { AmtError } from '../errors.js';
import type { Problem } from '../errors.js';
import type { MappedBody, MappingInput, MappingStep } from '../pipeline/mapping-step.js';
import { readXml } from '../xml/read.js';
import type { XmlElement } from '../xml/tree.js';
import { preloadSchemaSet, validateXml, validateXmlText } from '../xml/validate.js';
import type { XsdValidationError, XsdValidationResult } from '../xml/validate.js';
import { writeXml } from '../xml/write.js';
import type { MappingDefinition } from './compile.js';
import { buildJson, buildXml, failOnProblems, newRunContext, pruneXml, settleJson } from './execute.js';
import type { RunOptions } from './execute.js';
import type { MappingScope } from './model.js';

export const XML_CONTENT_TYPE = 'application/xml; charset=utf-8';
export const JSON_CONTENT_TYPE = 'application/json';

export interface MappingResult extends MappedBody {
  readonly content: string;
  /** XML targets: the tree that was written. */
  readonly xml?: XmlElement;
  /** JSON targets: the value that was written. */
  readonly json?: unknown;
}

export interface CompiledMapping {
  readonly definition: MappingDefinition;
  /** Maps without validating the output. */
  map(input: MappingInput, options?: RunOptions): MappingResult | Promise<MappingResult>;
  /** Validates a mapped XML result against the target schema set (if the mapping names one). */
  validate(result: MappingResult): XsdValidationResult | undefined;
  /** map + validate; throws AMT_MAPPING_FAILED or AMT_XML_INVALID. The pipeline's step. */
  readonly step: MappingStep;
}

export function toCompiledMapping(definition: MappingDefinition): CompiledMapping {
  const { source, target } = definition;
  const declarations = { ...target.namespaces };

  const scopeFor = (input: MappingInput, options: RunOptions): MappingScope => {
    const run = newRunContext(options, definition.async);
    const root = source.format === 'xml' ? readSource(input, definition) : input;
    return { root, input, item: root, index: 0, trail: '', run };
  };

  const finish = (scope: MappingScope, tree: unknown): MappingResult => {
    failOnProblems(scope.run.problems, definition.name);
    if (target.format === 'xml') {
      const xml = tree as XmlElement;
      return { contentType: XML_CONTENT_TYPE, content: writeXml(xml, { indent: target.indent }), xml };
    }
    return { contentType: JSON_CONTENT_TYPE, content: JSON.stringify(tree), json: tree };
  };

  const map = (input: MappingInput, options: RunOptions = {}): MappingResult | Promise<MappingResult> => {
    const scope = scopeFor(input, options);
    const tree =
      target.format === 'xml'
        ? buildXml(definition.root, scope, declarations)
        : buildJson(definition.root, scope);
    const pending = scope.run.pending;
    if (pending === undefined) return finish(scope, tree);
    return Promise.all(pending).then(() => {
      if (target.format === 'xml') pruneXml(tree as Parameters<typeof pruneXml>[0]);
      return finish(scope, target.format === 'xml' ? tree : (settleJson(tree) ?? {}));
    });
  };

  const validate = (result: MappingResult): XsdValidationResult | undefined =>
    target.schemaSet === undefined
      ? undefined
      : validateXml(result.content, target.schemaSet, { source: definition.name });

  /**
   * The step's answer: a validated XML document leaves as the bytes validation parsed (a mapping
   * worker hands them over without copying, and nobody encodes the text again); anything else
   * as text.
   */
  const checked = (result: MappingResult): MappedBody => {
    if (target.schemaSet === undefined) return result;
    const { validation, bytes } = validateXmlText(result.content, target.schemaSet, {
      source: definition.name,
    });
    if (!validation.valid) throw invalidOutput(definition, validation.errors);
    return { contentType: result.contentType, content: bytes };
  };

  // The step declares what it reads, so the pipeline hands it JSON or the XML document.
  const step: MappingStep = Object.assign(
    (input: MappingInput) => {
      const result = map(input);
      return result instanceof Promise ? result.then(checked) : checked(result);
    },
    { source: source.format },
  );

  return { definition, map, validate, step };
}

/** Compiles the target schema set now rather than on the first message. */
export function preloadSchemas(definition: MappingDefinition): void {
  if (definition.target.schemaSet !== undefined) preloadSchemaSet(definition.target.schemaSet);
  if (definition.source.schemaSet !== undefined) preloadSchemaSet(definition.source.schemaSet);
}

function readSource(input: MappingInput, definition: MappingDefinition): XmlElement {
  const { application } = input;
  if (typeof application !== 'string' && !(application instanceof Uint8Array)) {
    throw new AmtError(
      'AMT_MAPPING_FAILED',
      `mapping ${definition.name} reads XML, but the message holds no XML text`,
      {
        problems: [{ path: 'application', message: 'expected the XML document as text' }],
      },
    );
  }
  const root = readXml(application, { source: input.message.id });
  const expected = definition.source.root;
  if (expected !== undefined && (root.ns !== expected.ns || root.local !== expected.local)) {
    throw new AmtError(
      'AMT_MAPPING_FAILED',
      `mapping ${definition.name} expects ${expected.name}, got {${root.ns}}${root.local}`,
      {
        problems: [
          {
            path: '/',
            message: `root element {${root.ns}}${root.local} is not ${expected.name} ({${expected.ns}}${expected.local})`,
          },
        ],
      },
    );
  }
  if (definition.source.schemaSet !== undefined) {
    const validation = validateXml(application, definition.source.schemaSet, { source: input.message.id });
    if (!validation.valid) throw invalidInput(definition, validation.errors);
  }
  return root;
}

export function validationProblems(errors: readonly XsdValidationError[]): Problem[] {
  return errors.map((e) => ({
    path: e.path ?? `line ${e.line}`,
    message: `line ${e.line}${e.column === undefined ? '' : `:${e.column}`}: ${e.message}`,
  }));
}

function invalidOutput(definition: MappingDefinition, errors: readonly XsdValidationError[]): AmtError {
  return new AmtError(
    'AMT_XML_INVALID',
    `mapping ${definition.name} produced XML that is not valid against ${definition.target.schemaSet}: ${errors[0]?.message ?? ''}`,
    { problems: validationProblems(errors) },
  );
}

function invalidInput(definition: MappingDefinition, errors: readonly XsdValidationError[]): AmtError {
  return new AmtError(
    'AMT_XML_INVALID',
    `the message is not valid against ${definition.source.schemaSet} (mapping ${definition.name}): ${errors[0]?.message ?? ''}`,
    { problems: validationProblems(errors) },
  );
}
