/**
 * The seam between the pipeline and the mapping engine: a route names a mapping file, which is
 * compiled once into a `MappingStep`. Without a mapping the application passes through as JSON.
 */
import { AmtError } from '../errors.js';
import type { AttachmentRef } from '../store/types.js';
import { isXmlMediaType, type StoredMessage } from './stored-message.js';

/** What a mapping reads: a JSON application or an XML document. */
export type SourceFormat = 'json' | 'xml';

export interface MappingInput {
  /**
   * For a JSON source: the application as received (parsed JSON: reference, applicant, data …).
   * When the citizen logged in, `verifiedIdentity` holds what the IdP confirmed (givenName,
   * familyName, birthDate, address, trustLevel …; see docs/identity.md), apart from `applicant`.
   * For an XML source: the XML document as text, read by the mapping through the guarded reader.
   */
  readonly application: unknown;
  readonly message: {
    readonly id: string;
    readonly deliveryId: string;
    readonly tenant: { readonly id: string; readonly name: string; readonly ars: string };
    readonly service: string;
    readonly reference: string | undefined;
    readonly receivedAt: number;
  };
  readonly attachments: readonly AttachmentRef[];
}

/**
 * A JSON application as its stored text, for a step that maps elsewhere (a worker thread): the
 * text crosses as one string and is parsed there, instead of being parsed here and its object
 * tree copied across.
 */
export interface JsonTextMappingInput extends Omit<MappingInput, 'application'> {
  readonly applicationJson: string;
}

export interface MappedBody {
  readonly contentType: string;
  readonly content: string | Buffer;
}

/** Throws AmtError `AMT_MAPPING_FAILED` (with problems: rule, path, XSD line, XPath) on failure. */
export interface MappingStep {
  (input: MappingInput): MappedBody | Promise<MappedBody>;
  /**
   * The kind of message the step reads. Declared by compiled mapping files; a step without it
   * gets the parsed application whatever the message holds (pass-through, custom steps).
   */
  readonly source?: SourceFormat;
  /** The same mapping for a JSON application given as text; offered only by steps whose `source` is JSON. */
  readonly fromJsonText?: (input: JsonTextMappingInput) => Promise<MappedBody>;
}

export const passThrough: MappingStep = (input) => ({
  contentType: 'application/json',
  content: JSON.stringify(input.application),
});

/**
 * The `application` a step gets: the parsed JSON application, or for an XML source the XML
 * document an inbound adapter recorded. A message of the other kind is refused with
 * `AMT_MAPPING_SOURCE_MISMATCH` (permanent) — it is never mapped as something it is not.
 */
export function applicationFor(step: MappingStep, stored: StoredMessage, mapping: string): unknown {
  const { document } = stored;
  if (step.source === 'xml') {
    if (document !== undefined && isXmlMediaType(document.mediaType)) return document.text;
    const holds = document === undefined ? 'a JSON application' : `a ${document.mediaType} document`;
    throw mismatch(mapping, 'XML', holds);
  }
  if (step.source === 'json' && document !== undefined) {
    throw mismatch(mapping, 'JSON', `a ${document.mediaType} document`);
  }
  return stored.application;
}

function mismatch(mapping: string, reads: string, holds: string): AmtError {
  return new AmtError(
    'AMT_MAPPING_SOURCE_MISMATCH',
    `mapping ${mapping} reads ${reads}, but the message holds ${holds}`,
    { problems: [{ path: 'application', message: `expected ${reads}, got ${holds}` }] },
  );
}
