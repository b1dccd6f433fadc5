/**
 * FIT-Connect metadata (schema 1.x): what the Fachdaten and each attachment are, with the SHA-512
 * hash of their plaintext, so the receiver can check that nothing was swapped. Built by the
 * sender, checked by the receiver.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Problem } from '../../src/errors.js';

export type AttachmentPurpose = 'attachment' | 'form' | 'report';

export interface MetadataHash {
  readonly type: 'sha512';
  readonly content: string;
}

export interface MetadataAttachment {
  readonly attachmentId: string;
  readonly hash: MetadataHash;
  readonly mimeType: string;
  readonly filename?: string;
  readonly description?: string;
  readonly purpose: AttachmentPurpose;
}

export interface FitConnectMetadata {
  readonly $schema: string;
  readonly contentStructure: {
    readonly data?: {
      readonly hash: MetadataHash;
      readonly submissionSchema: { readonly schemaUri: string; readonly mimeType: string };
    };
    readonly attachments: readonly MetadataAttachment[];
  };
  readonly authenticationInformation?: readonly AuthenticationInformation[];
  readonly replyChannel?: Readonly<Record<string, unknown>>;
}

/**
 * Proof of the applicant's identity (metadata 1.x): `type` the kind of proof
 * (`identificationReport`), `version` its semver version, `content` the proof as a signed JWT.
 * Built in identification-report.ts.
 */
export interface AuthenticationInformation {
  readonly type: string;
  readonly version: string;
  readonly content: string;
}

export function metadataSchemaUri(version: string): string {
  return `https://schema.fitko.de/fit-connect/metadata/${version}/metadata.schema.json`;
}

export interface BuildMetadataInput {
  readonly version: string;
  readonly data: { readonly hash: string; readonly schemaUri: string; readonly mimeType: string };
  readonly attachments: readonly MetadataAttachment[];
  /** Proofs of the applicant's verified identity; left out of the metadata when empty. */
  readonly authenticationInformation?: readonly AuthenticationInformation[];
  readonly replyChannel?: Readonly<Record<string, unknown>>;
}

export function buildMetadata(input: BuildMetadataInput): FitConnectMetadata {
  return {
    $schema: metadataSchemaUri(input.version),
    contentStructure: {
      data: {
        hash: { type: 'sha512', content: input.data.hash },
        submissionSchema: { schemaUri: input.data.schemaUri, mimeType: input.data.mimeType },
      },
      attachments: input.attachments,
    },
    ...(input.authenticationInformation && input.authenticationInformation.length > 0
      ? { authenticationInformation: input.authenticationInformation }
      : {}),
    ...(input.replyChannel ? { replyChannel: input.replyChannel } : {}),
  };
}

const hash = {
  type: 'object',
  required: ['type', 'content'],
  properties: {
    type: { const: 'sha512' },
    content: { type: 'string', pattern: '^[0-9a-f]{128}$' },
  },
} as const;

/** The required structure of metadata 1.x, enough to process a submission safely. */
const structureSchema = {
  type: 'object',
  required: ['$schema', 'contentStructure'],
  properties: {
    $schema: {
      type: 'string',
      pattern:
        '^https://schema\\.fitko\\.de/fit-connect/metadata/1\\.[0-9]+\\.[0-9]+/metadata\\.schema\\.json$',
    },
    contentStructure: {
      type: 'object',
      required: ['attachments'],
      properties: {
        data: {
          type: 'object',
          required: ['hash', 'submissionSchema'],
          properties: {
            hash,
            submissionSchema: {
              type: 'object',
              required: ['schemaUri', 'mimeType'],
              properties: {
                schemaUri: { type: 'string', minLength: 1 },
                mimeType: { enum: ['application/json', 'application/xml'] },
              },
            },
          },
        },
        attachments: {
          type: 'array',
          items: {
            type: 'object',
            required: ['attachmentId', 'hash', 'mimeType', 'purpose'],
            properties: {
              attachmentId: { type: 'string', format: 'uuid' },
              hash,
              mimeType: { type: 'string', minLength: 3 },
              filename: { type: 'string' },
              purpose: { enum: ['attachment', 'form', 'report'] },
            },
          },
        },
      },
    },
    authenticationInformation: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'version', 'content'],
        properties: {
          type: { type: 'string', minLength: 1 },
          version: { type: 'string', minLength: 1 },
          content: { type: 'string', minLength: 1 },
        },
      },
    },
  },
} as const;

const validateStructure = new Ajv2020({ allErrors: true, strict: false, validateFormats: true })
  .addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i)
  .compile(structureSchema);

/** Structural problems of received metadata, each with the JSON pointer it concerns. */
export function metadataProblems(value: unknown): Problem[] {
  if (validateStructure(value)) return [];
  return (validateStructure.errors ?? []).map((e) => ({
    path: e.instancePath || '/',
    message: e.message ?? 'invalid',
  }));
}
