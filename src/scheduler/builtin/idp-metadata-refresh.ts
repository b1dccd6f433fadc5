/**
 * Refreshes one IdP's SAML metadata file from its URL. The document is installed only when its
 * signature verifies against the configured certificates, it has not expired and it describes
 * the same IdP (see `refreshIdpMetadata`); the gateway's verifier notices the new file by
 * itself. A failed refresh leaves the file as it was and fails the run, so the job history and
 * the job metrics show it.
 */
import { readFile } from 'node:fs/promises';
import { parseTimerDuration } from '../../config/units.js';
import { AmtError } from '../../errors.js';
import { refreshIdpMetadata } from '../../identity/refresh.js';
import type { JobTask, SchedulerLogger } from '../types.js';
import type { IdpMetadataRefreshOptions } from './options.js';

export interface IdpMetadataRefreshDeps {
  readonly logger: SchedulerLogger;
  readonly now?: () => number;
}

export function idpMetadataRefreshTask(
  options: IdpMetadataRefreshOptions,
  deps: IdpMetadataRefreshDeps,
): JobTask {
  const timeoutMs = options.timeout === undefined ? undefined : parseTimerDuration(options.timeout);
  return async ({ signal }) => {
    // Read on every run: a rotated federation certificate is picked up without a restart.
    const verifyWith = await Promise.all(
      options.signedBy.map((file) =>
        readFile(file, 'utf8').catch(() => {
          throw new AmtError('AMT_SAML_METADATA_INVALID', `certificate file ${file} cannot be read`);
        }),
      ),
    );
    signal.throwIfAborted();
    const result = await refreshIdpMetadata({
      url: options.url,
      verifyWith,
      targetFile: options.metadata,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(deps.now ? { now: deps.now() } : {}),
    });
    deps.logger.info(result.changed ? 'IdP metadata replaced' : 'IdP metadata unchanged', {
      entityId: result.entityId,
      validUntil: result.validUntil === undefined ? undefined : new Date(result.validUntil).toISOString(),
      signingCertificates: result.signingCertificates,
      file: options.metadata,
    });
    return { items: result.changed ? 1 : 0 };
  };
}
