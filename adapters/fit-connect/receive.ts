/**
 * Receiving for the city's own destinations: list what waits, fetch it, decrypt and check it
 * (metadata structure, announced vs. described attachments, SHA-512 hashes, sizes, the Fachdaten
 * schema when one is configured), hand it to the pipeline, and only once the pipeline has it
 * durably send accept-submission. A submission that fails a check is answered with
 * reject-submission and its problems; one the pipeline could not take yet stays for the next poll.
 */
import type { AdapterContext, InboundApplication } from '../../src/adapter-contract.js';
import { normalizeLeistungsschluessel } from '../../src/domain.js';
import type { SubmissionApiClient } from './client.js';
import type { ResolvedConfig, ResolvedReceivingDestination } from './config.js';
import {
  EVENTS,
  importPs512Key,
  signSet,
  type AuthenticationTags,
  type SubmissionProblem,
} from './events.js';
import { authenticationTag, decryptJwe, importRsaOaepKey, isCompactJwe, jweKid, sha512Hex } from './jwe.js';
import { metadataProblems, type FitConnectMetadata } from './metadata.js';
import type { FachdatenValidator, ParsedFachdaten } from './fachdaten-schema.js';
import { problem, SubmissionRejected } from './problems.js';

export interface ReceiverDeps {
  readonly client: SubmissionApiClient;
  readonly context: AdapterContext;
  readonly config: ResolvedConfig;
  readonly fachdaten: FachdatenValidator;
}

interface SubmissionListing {
  readonly submissions?: readonly { readonly submissionId?: unknown; readonly caseId?: unknown }[];
}

interface FetchedSubmission {
  readonly submissionId: string;
  readonly caseId: string;
  readonly destinationId: string;
  readonly serviceType?: { readonly identifier?: unknown };
  readonly attachments?: readonly string[];
  readonly encryptedMetadata?: unknown;
  readonly encryptedData?: unknown;
}

interface DestinationKeys {
  readonly decrypt: Awaited<ReturnType<typeof importRsaOaepKey>>;
  readonly sign: Awaited<ReturnType<typeof importPs512Key>>;
}

/** Checked, decrypted content of one submission, ready for the pipeline. */
interface OpenedSubmission {
  readonly application: InboundApplication;
  readonly tags: AuthenticationTags;
}

export class Inbox {
  private readonly keys = new Map<string, Promise<DestinationKeys>>();

  constructor(private readonly deps: ReceiverDeps) {}

  /**
   * One pass over every configured destination; returns how many submissions were answered. A
   * destination whose listing fails does not hold up the others; the first such failure is
   * rethrown at the end so the scheduler records it.
   */
  async poll(signal: AbortSignal): Promise<number> {
    let answered = 0;
    let listingFailure: unknown;
    for (const destination of this.deps.config.receiving.destinations) {
      if (signal.aborted) break;
      let listing: SubmissionListing;
      try {
        listing = await this.deps.client.json<SubmissionListing>('GET', '/submissions', {
          step: 'list submissions',
          signal,
          query: {
            destinationId: destination.destinationId,
            offset: 0,
            limit: this.deps.config.receiving.batchSize,
          },
        });
      } catch (err) {
        listingFailure ??= err;
        continue;
      }
      for (const entry of listing.submissions ?? []) {
        if (signal.aborted) break;
        if (typeof entry.submissionId !== 'string') continue;
        try {
          if (await this.process(destination, entry.submissionId, signal)) answered++;
        } catch (err) {
          this.deps.context.logger.warn('FIT-Connect submission left for the next poll', {
            submissionId: entry.submissionId,
            error: (err as Error).message,
          });
        }
      }
    }
    if (listingFailure !== undefined) throw listingFailure;
    return answered;
  }

  /** True when the submission was accepted or rejected. */
  private async process(
    destination: ResolvedReceivingDestination,
    submissionId: string,
    signal: AbortSignal,
  ): Promise<boolean> {
    const submission = await this.deps.client.json<FetchedSubmission>('GET', `/submissions/${submissionId}`, {
      step: 'fetch submission',
      signal,
    });
    const keys = await this.keysFor(destination);
    let opened: OpenedSubmission;
    try {
      opened = await this.open(destination, submission, keys, signal);
    } catch (err) {
      if (!(err instanceof SubmissionRejected)) throw err;
      await this.answer(
        destination,
        keys,
        submission,
        EVENTS.reject,
        { problems: err.submissionProblems },
        signal,
      );
      this.deps.context.logger.warn('FIT-Connect submission rejected', {
        submissionId,
        code: err.code,
        problems: err.submissionProblems.map((p) => `${p.type} (${p.instance})`),
      });
      return true;
    }
    const { messageId } = await this.deps.context.receive(opened.application);
    await this.answer(
      destination,
      keys,
      submission,
      EVENTS.accept,
      { authenticationTags: opened.tags },
      signal,
    );
    this.deps.context.logger.info('FIT-Connect submission received and accepted', {
      submissionId,
      messageId,
    });
    return true;
  }

  private async open(
    destination: ResolvedReceivingDestination,
    submission: FetchedSubmission,
    keys: DestinationKeys,
    signal: AbortSignal,
  ): Promise<OpenedSubmission> {
    const service = normalizeLeistungsschluessel(submission.serviceType?.identifier);
    if (!service) {
      throw new SubmissionRejected([
        problem('service-mismatch', 'serviceType', 'the service is not a Leistungsschlüssel'),
      ]);
    }
    const metadataJwe = submission.encryptedMetadata;
    const metadata = await this.openMetadata(destination, metadataJwe, keys);
    const structure = metadata.contentStructure;

    const announced = [...(submission.attachments ?? [])].sort();
    const described = structure.attachments.map((a) => a.attachmentId).sort();
    if (announced.join() !== described.join()) {
      throw new SubmissionRejected([
        problem(
          'attachments-mismatch',
          'metadata',
          'the attachments in the metadata are not those of the submission',
        ),
      ]);
    }

    let fachdaten: ParsedFachdaten | undefined;
    let dataTag: string | undefined;
    if (structure.data) {
      const plaintext = await this.decrypt(submission.encryptedData, keys, destination, 'data');
      if (sha512Hex(plaintext) !== structure.data.hash.content) {
        throw new SubmissionRejected([
          problem('hash-mismatch', 'data', 'the hash of the Fachdaten does not match the metadata'),
        ]);
      }
      fachdaten = this.deps.fachdaten.parse(plaintext, structure.data.submissionSchema);
      dataTag = authenticationTag(submission.encryptedData as string);
    }

    const attachments: NonNullable<InboundApplication['attachments']>[number][] = [];
    const attachmentTags: Record<string, string> = {};
    const max = this.deps.config.receiving.maxAttachmentBytes;
    for (const described of structure.attachments) {
      const instance = `attachment:${described.attachmentId}`;
      const response = await this.deps.client.request(
        'GET',
        `/submissions/${submission.submissionId}/attachments/${described.attachmentId}`,
        { step: 'fetch attachment', signal },
      );
      const jwe = response.text.trim();
      // Base64url makes the ciphertext a third larger; refuse before decrypting something huge.
      if (jwe.length > Math.ceil((max * 4) / 3) + 4096) {
        throw new SubmissionRejected([problem('attachment-too-large', instance, `larger than ${max} bytes`)]);
      }
      const plaintext = await this.decrypt(jwe, keys, destination, instance);
      if (plaintext.length > max) {
        throw new SubmissionRejected([problem('attachment-too-large', instance, `larger than ${max} bytes`)]);
      }
      if (sha512Hex(plaintext) !== described.hash.content) {
        throw new SubmissionRejected([
          problem('hash-mismatch', instance, 'the hash of the attachment does not match'),
        ]);
      }
      attachmentTags[described.attachmentId] = authenticationTag(jwe);
      attachments.push({
        filename: described.filename ?? `${described.attachmentId}`,
        mediaType: described.mimeType,
        content: Buffer.from(plaintext),
        purpose: described.description ?? described.purpose,
      });
    }

    return {
      application: {
        ars: destination.ars,
        service,
        reference: submission.submissionId,
        channel: 'fit-connect',
        // JSON Fachdaten as data; XML (any other media type) as the document XML mappings read.
        data: fachdaten?.data,
        ...(fachdaten?.document ? { document: fachdaten.document } : {}),
        attachments,
      },
      tags: {
        metadata: authenticationTag(metadataJwe as string),
        ...(dataTag ? { data: dataTag } : {}),
        attachments: attachmentTags,
      },
    };
  }

  private async openMetadata(
    destination: ResolvedReceivingDestination,
    jwe: unknown,
    keys: DestinationKeys,
  ): Promise<FitConnectMetadata> {
    const plaintext = await this.decrypt(jwe, keys, destination, 'metadata');
    let metadata: unknown;
    try {
      metadata = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
    } catch {
      throw new SubmissionRejected([problem('syntax-violation', 'metadata', 'the metadata is not JSON')]);
    }
    const problems = metadataProblems(metadata);
    if (problems.length > 0) {
      throw new SubmissionRejected(
        problems.map((p) => problem('invalid-metadata-schema', 'metadata', `${p.path}: ${p.message}`)),
      );
    }
    return metadata as FitConnectMetadata;
  }

  private async decrypt(
    jwe: unknown,
    keys: DestinationKeys,
    destination: ResolvedReceivingDestination,
    instance: string,
  ): Promise<Uint8Array> {
    if (!isCompactJwe(jwe))
      throw new SubmissionRejected([problem('encryption-issue', instance, 'not a JWE in compact form')]);
    const kid = jweKid(jwe);
    if (kid !== destination.decryptionKey.kid) {
      throw new SubmissionRejected([
        problem('encryption-issue', instance, `encrypted for key ${String(kid)}, not ours`),
      ]);
    }
    try {
      return (await decryptJwe(jwe, keys.decrypt)).plaintext;
    } catch {
      throw new SubmissionRejected([
        problem('encryption-issue', instance, 'cannot be decrypted or was altered'),
      ]);
    }
  }

  private async answer(
    destination: ResolvedReceivingDestination,
    keys: DestinationKeys,
    submission: FetchedSubmission,
    event: string,
    eventPayload: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<void> {
    const set = await signSet({
      key: keys.sign,
      kid: destination.signingKey.kid,
      issuer: destination.destinationId,
      submissionId: submission.submissionId,
      caseId: submission.caseId,
      event,
      eventPayload,
    });
    await this.deps.client.request('POST', `/cases/${submission.caseId}/events`, {
      step: 'send event',
      signal,
      body: set,
      contentType: 'application/jose',
    });
  }

  private keysFor(destination: ResolvedReceivingDestination): Promise<DestinationKeys> {
    let keys = this.keys.get(destination.destinationId);
    if (!keys) {
      keys = (async () => ({
        decrypt: await importRsaOaepKey(destination.decryptionKey),
        sign: await importPs512Key(destination.signingKey),
      }))();
      this.keys.set(destination.destinationId, keys);
    }
    return keys;
  }
}

export type { SubmissionProblem };
