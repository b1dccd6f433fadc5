/**
 * Citizen status notices through FIT-Connect: an instance with `sending.postbox` carries the
 * notices a route sends to its `postbox.adapter` to the citizen postbox's destination. The core
 * builds each notice (recipient, German subject and text); this module turns it into the
 * submission's Fachdaten — the same postbox message the REST postbox API receives — and names
 * the service it is announced as.
 *
 * The federal postbox publishes no FIT-Connect service identifier or Fachdaten schema for
 * municipal senders: both are configuration, with the defaults below.
 */
import type { Delivery } from '../../src/adapter-contract.js';
import { leistungsschluesselUrn } from '../../src/domain.js';
import { deliveredPostboxMessage, type PostboxMessage } from '../../src/status/notify.js';

/** `serviceType.name` of a notice unless `sending.postbox.serviceName` is set. */
export const DEFAULT_POSTBOX_SERVICE_NAME = 'Mitteilung zum Stand eines Antrags';

/**
 * `submissionSchema.schemaUri` of a notice when neither `sending.postbox.schemaUri` is set nor the
 * destination declares a JSON schema for the service: this gateway's own name for the notice
 * shape, not a schema published by the postbox's operator.
 */
export const UNCONFIRMED_POSTBOX_SCHEMA_URI = 'urn:amtsbote:postbox-notice:1.0.0';

export interface FitConnectPostboxConfig {
  /** `serviceType.identifier`; default: the Leistungsschlüssel URN of the application's service. */
  readonly serviceIdentifier?: string;
  /** `serviceType.name`; default `DEFAULT_POSTBOX_SERVICE_NAME`. */
  readonly serviceName?: string;
  /** Fachdaten `schemaUri`; default: the destination's declared JSON schema, else `UNCONFIRMED_POSTBOX_SCHEMA_URI`. */
  readonly schemaUri?: string;
  /** Postbox status per citizen status; REJECTED is COMPLETED unless set here. */
  readonly statusValues?: Readonly<Record<string, string>>;
  /** Sent as `sender` in the Fachdaten. */
  readonly sender?: string;
  /** Reject notices without a bPK2 pseudonym instead of addressing them by the portal reference. */
  readonly requirePseudonym?: boolean;
}

/** What one notice becomes: the Fachdaten and the announced service. */
export interface PostboxSubmission {
  readonly data: Buffer;
  readonly message: PostboxMessage;
  readonly serviceType: { readonly identifier: string; readonly name: string };
  /** Undefined: the destination's declared schema for the service, else the unconfirmed default. */
  readonly schemaUri: string | undefined;
}

/** Reads the notice the core stored; anything else is refused for good and never sent. */
export function postboxSubmission(delivery: Delivery, config: FitConnectPostboxConfig): PostboxSubmission {
  const { notice, message } = deliveredPostboxMessage(delivery.body.content, config);
  return {
    data: Buffer.from(JSON.stringify(message), 'utf8'),
    message,
    serviceType: {
      identifier: config.serviceIdentifier ?? leistungsschluesselUrn(notice.service),
      name: config.serviceName ?? DEFAULT_POSTBOX_SERVICE_NAME,
    },
    schemaUri: config.schemaUri,
  };
}
