/**
 * Parses received Fachdaten by their declared media type and, for JSON with a configured schema
 * (by `schemaUri`), validates them. Anything but JSON (XML above all) stays text and goes to the
 * pipeline as the application's `document`: its XSD check belongs to the mapping that reads it.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';
import { isAmtError } from '../../src/errors.js';
import { parseJsonText } from '../../src/json-text.js';
import { problem, SubmissionRejected } from './problems.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  addFormatsModule) as unknown as FormatsPlugin;

/** Fachdaten as the pipeline takes them: JSON as `data`, anything else as a `document`. */
export type ParsedFachdaten =
  | { readonly data: unknown; readonly document?: undefined }
  | {
      readonly data?: undefined;
      readonly document: { readonly mediaType: string; readonly content: string };
    };

export class FachdatenValidator {
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly schemas: ReadonlyMap<string, Record<string, unknown>>) {}

  /**
   * JSON → `{ data }`, parsed (validated when a schema is configured); any other media type →
   * `{ document }`, the text with the submission's media type.
   */
  parse(
    plaintext: Uint8Array,
    submissionSchema: { readonly schemaUri: string; readonly mimeType: string },
  ): ParsedFachdaten {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
    } catch {
      throw new SubmissionRejected([problem('syntax-violation', 'data', 'the Fachdaten are not UTF-8 text')]);
    }
    if (submissionSchema.mimeType !== 'application/json') {
      return { document: { mediaType: submissionSchema.mimeType, content: text } };
    }
    let data: unknown;
    try {
      data = parseJsonText(text, 'the Fachdaten text');
    } catch (err) {
      if (!isAmtError(err)) throw err;
      // Not JSON, nested too deep, or holding what the gateway could only alter or pass on
      // broken (text XML cannot carry, integers parsing rounds): the sender hears why.
      if (err.problems.length === 0)
        throw new SubmissionRejected([problem('syntax-violation', 'data', err.message)]);
      throw new SubmissionRejected(
        err.problems.map((p) => problem('schema-violation', 'data', `${p.path}: ${p.message}`)),
      );
    }
    const validate = this.validatorFor(submissionSchema.schemaUri);
    if (validate && !validate(data)) {
      throw new SubmissionRejected(
        (validate.errors ?? []).map((e) =>
          problem('schema-violation', 'data', `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`),
        ),
      );
    }
    return { data };
  }

  private validatorFor(schemaUri: string): ValidateFunction | undefined {
    const cached = this.validators.get(schemaUri);
    if (cached) return cached;
    const schema = this.schemas.get(schemaUri);
    if (!schema) return undefined;
    // Fachdaten schemas are often draft-07; the keywords they use mean the same under 2020-12.
    const { $schema: _dialect, ...body } = schema;
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats(ajv);
    const validate = ajv.compile(body);
    this.validators.set(schemaUri, validate);
    return validate;
  }
}
