/**
 * The error catalog. Every error the gateway reports carries a stable code from here; the
 * operator-facing text, the HTTP status and whether a retry can help live next to the code.
 * `docs/errors.md` lists the same codes and a test keeps the two in sync.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly title: string;
  /** A retry of the same operation may succeed later (network, peer overloaded, lease lost). */
  readonly retryable: boolean;
}

export const ERROR_CATALOG = {
  // configuration
  AMT_CONFIG_INVALID: { status: 500, title: 'The configuration is invalid', retryable: false },
  AMT_CONFIG_UNREADABLE: { status: 500, title: 'The configuration file cannot be read', retryable: false },
  AMT_CONFIG_SECRET_MISSING: {
    status: 500,
    title: 'A referenced environment variable or secret file is missing',
    retryable: false,
  },
  // intake: authentication and authorisation
  AMT_AUTH_MISSING: { status: 401, title: 'No API key was presented', retryable: false },
  AMT_AUTH_INVALID: { status: 401, title: 'The API key is not valid', retryable: false },
  AMT_FORBIDDEN: { status: 403, title: 'This client may not do this', retryable: false },
  // intake: input
  AMT_BODY_MALFORMED: { status: 400, title: 'The request body is not well-formed', retryable: false },
  AMT_BODY_TOO_LARGE: { status: 413, title: 'The request body is too large', retryable: false },
  AMT_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The content type is not supported', retryable: false },
  AMT_VALIDATION_FAILED: {
    status: 422,
    title: 'The input is not valid',
    retryable: false,
  },
  AMT_UNKNOWN_TENANT: { status: 422, title: 'No tenant has this ARS', retryable: false },
  AMT_NO_ROUTE: { status: 422, title: 'No route serves this tenant and service', retryable: false },
  AMT_ATTACHMENT_TOO_LARGE: { status: 413, title: 'An attachment is too large', retryable: false },
  AMT_ATTACHMENT_INVALID: { status: 422, title: 'An attachment is not valid', retryable: false },
  AMT_IDEMPOTENCY_CONFLICT: {
    status: 409,
    title: 'This Idempotency-Key was used with a different request body',
    retryable: false,
  },
  AMT_IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    title: 'The Idempotency-Key header is not valid',
    retryable: false,
  },
  AMT_NOT_FOUND: { status: 404, title: 'Not found', retryable: false },
  AMT_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', retryable: false },
  AMT_NOT_REPLAYABLE: {
    status: 409,
    title: 'The message is not in a state that can be replayed',
    retryable: false,
  },
  AMT_SHUTTING_DOWN: { status: 503, title: 'The gateway is shutting down', retryable: true },
  AMT_STORE_UNAVAILABLE: { status: 503, title: 'The message store is not available', retryable: true },
  AMT_ATTACHMENTS_UNAVAILABLE: {
    status: 503,
    title: 'Attachment files cannot be written now',
    retryable: true,
  },
  AMT_INTERNAL: { status: 500, title: 'Internal error', retryable: true },
  // delivery
  AMT_DELIVERY_RETRYABLE: { status: 502, title: 'The delivery failed and will be retried', retryable: true },
  AMT_DELIVERY_REJECTED: {
    status: 502,
    title: 'The receiver rejected the delivery permanently',
    retryable: false,
  },
  AMT_DELIVERY_TIMEOUT: { status: 504, title: 'The receiver did not answer in time', retryable: true },
  AMT_RETRIES_EXHAUSTED: {
    status: 502,
    title: 'The delivery failed too often and was given up',
    retryable: false,
  },
  AMT_ADAPTER_UNKNOWN: { status: 500, title: 'No adapter of this type is installed', retryable: false },
  AMT_ROUTE_GONE: { status: 500, title: 'The route of this message no longer exists', retryable: false },
  AMT_MAPPING_FAILED: { status: 422, title: 'The mapping could not transform the message', retryable: false },
  AMT_MAPPING_SOURCE_MISMATCH: {
    status: 422,
    title: 'The message is not of the kind the mapping reads (JSON or XML)',
    retryable: false,
  },
  // mapping and XML (src/mapping, src/xml)
  AMT_XML_MALFORMED: { status: 422, title: 'The XML document is not well-formed', retryable: false },
  AMT_XML_DOCTYPE_FORBIDDEN: {
    status: 422,
    title: 'The XML document carries a DOCTYPE (DTDs and entities are refused)',
    retryable: false,
  },
  AMT_XML_TOO_LARGE: { status: 413, title: 'The XML document exceeds the size limit', retryable: false },
  AMT_XML_TOO_DEEP: { status: 422, title: 'The XML document is nested too deeply', retryable: false },
  AMT_XML_ENCODING_INVALID: { status: 422, title: 'The XML document is not valid UTF-8', retryable: false },
  AMT_XML_INVALID: { status: 422, title: 'The XML document is not valid against its XSD', retryable: false },
  AMT_SCHEMA_SET_UNKNOWN: { status: 500, title: 'Unknown schema set', retryable: false },
  AMT_SCHEMA_UNLOADABLE: { status: 500, title: 'The XSD schema set cannot be compiled', retryable: false },
  AMT_MAPPING_COMPILE_FAILED: { status: 500, title: 'The mapping file is not valid', retryable: false },
  // FIT-Connect (adapters/fit-connect)
  AMT_FIT_CONNECT_CALLBACK_INVALID: {
    status: 401,
    title: 'The FIT-Connect callback is not authentic, too old or a replay',
    retryable: false,
  },
  AMT_FIT_CONNECT_KEY_INVALID: {
    status: 500,
    title: 'A FIT-Connect key file is missing or not usable',
    retryable: false,
  },
  AMT_FIT_CONNECT_SUBMISSION_INVALID: {
    status: 422,
    title: 'A received FIT-Connect submission failed its checks and was rejected',
    retryable: false,
  },
  // identity: SAML, trust levels (src/identity)
  // 422: the citizen's login proof cannot be accepted — the portal should let the citizen log in again.
  // 401 stays reserved for the portal's own API credentials.
  AMT_SAML_MALFORMED: {
    status: 422,
    title: 'The SAML response is not well-formed or lacks a required element',
    retryable: false,
  },
  AMT_SAML_DOCTYPE_FORBIDDEN: {
    status: 422,
    title: 'The SAML document contains a DOCTYPE',
    retryable: false,
  },
  AMT_SAML_MULTIPLE_ASSERTIONS: {
    status: 422,
    title: 'The SAML response carries more than one assertion',
    retryable: false,
  },
  AMT_SAML_UNSIGNED: {
    status: 422,
    title: 'Neither the SAML response nor its assertion is signed',
    retryable: false,
  },
  AMT_SAML_SIGNATURE_INVALID: { status: 422, title: 'The SAML signature is not valid', retryable: false },
  AMT_SAML_CERT_UNTRUSTED: {
    status: 422,
    title: 'The SAML signature was made with a certificate not in the identity provider metadata',
    retryable: false,
  },
  AMT_SAML_ISSUER_UNKNOWN: {
    status: 422,
    title: 'The SAML issuer is not a configured identity provider',
    retryable: false,
  },
  AMT_SAML_STATUS: { status: 422, title: 'The identity provider reported a failed login', retryable: false },
  AMT_SAML_EXPIRED: { status: 422, title: 'The SAML assertion has expired', retryable: false },
  AMT_SAML_NOT_YET_VALID: { status: 422, title: 'The SAML assertion is not yet valid', retryable: false },
  AMT_SAML_AUDIENCE_MISMATCH: {
    status: 422,
    title: 'The SAML assertion is meant for another audience',
    retryable: false,
  },
  AMT_SAML_RECIPIENT_MISMATCH: {
    status: 422,
    title: 'The SAML assertion is meant for another recipient (ACS URL)',
    retryable: false,
  },
  AMT_SAML_IN_RESPONSE_TO_MISMATCH: {
    status: 422,
    title: 'The SAML assertion answers another authentication request',
    retryable: false,
  },
  AMT_SAML_REPLAYED: { status: 422, title: 'The SAML assertion was already used', retryable: false },
  AMT_SAML_DECRYPTION_FAILED: {
    status: 422,
    title: 'The encrypted SAML assertion cannot be decrypted',
    retryable: false,
  },
  AMT_SAML_TRUST_LEVEL_UNKNOWN: {
    status: 422,
    title: 'The SAML assertion states no trust level this gateway knows',
    retryable: false,
  },
  AMT_TRUST_LEVEL_TOO_LOW: {
    status: 403,
    title: 'The citizen logged in with a trust level below what this service requires',
    retryable: false,
  },
  AMT_SAML_METADATA_INVALID: {
    status: 500,
    title: 'The identity provider metadata is not valid',
    retryable: false,
  },
  AMT_SAML_METADATA_SIGNATURE_INVALID: {
    status: 500,
    title: 'The signature of the identity provider metadata is not valid',
    retryable: false,
  },
  // SOAP and XTA 2 (adapters/soap, adapters/xta2)
  AMT_SOAP_WSDL_INVALID: {
    status: 500,
    title: 'The WSDL cannot be loaded or lacks the configured service, port or operation',
    retryable: true,
  },
  AMT_XTA_EXCEPTION: { status: 502, title: 'The XTA server answered with an exception', retryable: false },
  AMT_XTA_UNREACHABLE: { status: 503, title: 'The XTA server cannot be reached', retryable: true },
  AMT_XTA_INBOUND_UNROUTABLE: {
    status: 422,
    title: 'An inbound XTA message matches no entry of the inbound routing table',
    retryable: false,
  },
  // status back-channel (src/status, adapters/postbox)
  AMT_STATUS_NOT_DELIVERED: {
    status: 409,
    title: 'The application is not delivered yet, so no status can be recorded for it; report it again later',
    retryable: true,
  },
  AMT_STATUS_AMBIGUOUS: {
    status: 409,
    title: 'The remote reference names more than one application; report the status by deliveryId',
    retryable: false,
  },
  // scheduler (src/scheduler)
  AMT_JOB_UNKNOWN: { status: 404, title: 'No scheduled job has this name', retryable: false },
  AMT_JOB_OVERLAP: {
    status: 409,
    title: 'An earlier run of the job is still running, so this occurrence was skipped',
    retryable: true,
  },
  AMT_JOB_MISSED: {
    status: 500,
    title: 'The occurrence passed while no gateway instance was running the scheduler',
    retryable: false,
  },
  AMT_JOB_TIMEOUT: { status: 504, title: 'The job run did not finish within its timeout', retryable: true },
  AMT_JOB_LEASE_EXPIRED: {
    status: 500,
    title: 'The job run stopped renewing its lease (its instance died or stalled); another one took over',
    retryable: true,
  },
  AMT_JOB_GIVEN_UP: {
    status: 500,
    title: 'The occurrence lost its runner too often and is not taken over again',
    retryable: false,
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** One located problem: where (a JSON pointer or a path like `routes[2].adapter`) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export class AmtError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly problems: readonly Problem[];
  /** Seconds after which a retry makes sense, when the peer said so. */
  readonly retryAfterSeconds: number | undefined;
  /** Machine-readable facts for the message history (a peer's status code, a fault code …); no personal data. */
  readonly details: unknown;

  constructor(
    code: ErrorCode,
    detail?: string,
    options: {
      problems?: readonly Problem[];
      cause?: unknown;
      retryable?: boolean;
      retryAfterSeconds?: number;
      details?: unknown;
    } = {},
  ) {
    const spec: ErrorSpec = ERROR_CATALOG[code];
    super(detail ?? spec.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AmtError';
    this.code = code;
    this.status = spec.status;
    this.retryable = options.retryable ?? spec.retryable;
    this.problems = options.problems ?? [];
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  get title(): string {
    return ERROR_CATALOG[this.code].title;
  }
}

export function isAmtError(err: unknown): err is AmtError {
  return err instanceof AmtError;
}
