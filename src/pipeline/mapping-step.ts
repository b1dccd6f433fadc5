/**
 * The seam between the pipeline and the mapping engine: a route names a mapping file, which is
 * compiled once into a `MappingStep`. Without a mapping the application passes through as JSON.
 */
import type { AttachmentRef } from '../store/types.js';

export interface MappingInput {
  /**
   * The application as received from the portal (parsed JSON: reference, applicant, data …).
   * When the citizen logged in, `verifiedIdentity` holds what the IdP confirmed (givenName,
   * familyName, birthDate, address, trustLevel …; see docs/identity.md), apart from `applicant`.
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

export interface MappedBody {
  readonly contentType: string;
  readonly content: string | Buffer;
}

/** Throws AmtError `AMT_MAPPING_FAILED` (with problems: rule, path, XSD line, XPath) on failure. */
export type MappingStep = (input: MappingInput) => MappedBody | Promise<MappedBody>;

export const passThrough: MappingStep = (input) => ({
  contentType: 'application/json',
  content: JSON.stringify(input.application),
});
