/**
 * FIT-Connect: EfA services through the federal delivery service (Zustelldienst). Sends
 * deliveries as end-to-end encrypted submissions, polls their event log for forwarded / accepted
 * / rejected, and receives submissions addressed to the city's own destinations.
 */
import { createRemoteJWKSet } from 'jose';
import { defineAdapter, type AdapterContext, type AdapterInstance } from '../../src/adapter-contract.js';
import { createCallbackHandler, type CallbackRequest, type CallbackResponse } from './callback.js';
import { SubmissionApiClient } from './client.js';
import { resolveConfig, type FitConnectConfig, type ResolvedConfig } from './config.js';
import { DestinationDirectory } from './destinations.js';
import { SET_ALG, type SetKeyResolver } from './events.js';
import { FachdatenValidator } from './fachdaten-schema.js';
import { IdentificationReports } from './identification-report.js';
import { Inbox } from './receive.js';
import { refreshDestinations } from './refresh.js';
import { RoutingDirectory } from './routing.js';
import { fitConnectConfigSchema } from './schema.js';
import { deliverSubmission } from './send.js';
import { pollStatuses } from './status.js';
import { ClientCredentialsTokens } from './token.js';

/** The instance, plus the callback entry point the HTTP layer mounts for instances that receive. */
export interface FitConnectInstance extends AdapterInstance {
  /** Verifies a Zustelldienst callback and starts an inbox/status poll; undefined without `receiving.callbackSecret`. */
  readonly handleCallback: ((request: CallbackRequest) => Promise<CallbackResponse>) | undefined;
}

export function createFitConnectInstance(
  context: AdapterContext,
  config: FitConnectConfig,
): FitConnectInstance {
  const resolved: ResolvedConfig = resolveConfig(config, context.resolvePath);
  const tokens = new ClientCredentialsTokens({
    tokenUrl: resolved.tokenUrl,
    clientId: resolved.clientId,
    clientSecret: resolved.clientSecret,
    timeoutMs: resolved.requestTimeoutMs,
  });
  const client = new SubmissionApiClient({
    baseUrl: resolved.submissionApiUrl,
    apiVersion: resolved.apiVersion,
    tokens,
    timeoutMs: resolved.requestTimeoutMs,
  });
  const destinations = new DestinationDirectory(client, {
    ttlMs: resolved.sending.keyCacheTtlMs,
    trustAnchors: resolved.sending.trustAnchors,
  });
  const routing = resolved.routingApiUrl
    ? new RoutingDirectory({
        routingApiUrl: resolved.routingApiUrl,
        routingJwksUrl: resolved.routingJwksUrl,
        submissionHost: new URL(resolved.submissionApiUrl).host,
        ttlMs: resolved.sending.routeCacheTtlMs,
        timeoutMs: resolved.requestTimeoutMs,
      })
    : undefined;
  const serviceJwks = createRemoteJWKSet(new URL(resolved.jwksUrl));
  const serviceKeys: SetKeyResolver = (_issuer, kid) => serviceJwks({ alg: SET_ALG, kid });
  const inbox =
    resolved.receiving.destinations.length > 0
      ? new Inbox({
          client,
          context,
          config: resolved,
          fachdaten: new FachdatenValidator(resolved.receiving.dataSchemas),
        })
      : undefined;

  const lifetime = new AbortController();
  let inboxRun: Promise<number> | undefined;
  let inboxAgain = false;
  /** One inbox pass at a time; a request during a pass schedules exactly one more. */
  const pollInbox = (signal: AbortSignal): Promise<number> => {
    if (!inbox) return Promise.resolve(0);
    if (inboxRun) {
      inboxAgain = true;
      return inboxRun;
    }
    const run = async (): Promise<number> => {
      let total = 0;
      do {
        inboxAgain = false;
        total += await inbox.poll(signal);
      } while (inboxAgain && !signal.aborted);
      return total;
    };
    inboxRun = run().finally(() => {
      inboxRun = undefined;
    });
    return inboxRun;
  };
  const pollStatus = (signal: AbortSignal): Promise<number> =>
    resolved.status.enabled
      ? pollStatuses(
          { client, destinations, serviceKeys, context, batchSize: resolved.status.batchSize },
          signal,
        )
      : Promise.resolve(0);

  const reports = new IdentificationReports(resolved.sending.identificationReport, context.logger);

  return {
    deliver: (delivery, signal) =>
      deliverSubmission({ client, destinations, routing, config: resolved, reports }, delivery, signal),
    async poll(signal) {
      const combined = AbortSignal.any([signal, lifetime.signal]);
      // Both halves run even when one fails; the failure is still reported to the scheduler.
      const [received, statuses] = await Promise.allSettled([pollInbox(combined), pollStatus(combined)]);
      if (received.status === 'rejected') throw received.reason;
      if (statuses.status === 'rejected') throw statuses.reason;
      return { items: received.value + statuses.value };
    },
    async refresh(signal) {
      const combined = AbortSignal.any([signal, lifetime.signal]);
      const items = await refreshDestinations(
        {
          destinations,
          routing,
          configuredDestinationId: resolved.sending.destinationId,
          logger: context.logger,
        },
        combined,
      );
      return { items };
    },
    handleCallback: resolved.receiving.callbackSecret
      ? createCallbackHandler({
          secret: resolved.receiving.callbackSecret,
          rememberOnce: context.rememberOnce,
          logger: context.logger,
          onNotification: async () => {
            await Promise.all([pollInbox(lifetime.signal), pollStatus(lifetime.signal)]);
          },
        })
      : undefined,
    async close() {
      lifetime.abort();
      await inboxRun?.catch(() => undefined);
    },
  };
}

export const fitConnectAdapter = defineAdapter<FitConnectConfig>({
  type: 'fit-connect',
  version: '1.0.0',
  description:
    'EfA services through FIT-Connect: encrypted submissions to a Zustelldienst destination (fixed or routed by ARS and ' +
    "Leistungsschlüssel), status from the event log, and receiving for the city's own destinations.",
  capabilities: { outbound: true, inbound: true, poll: true, refresh: true },
  statusNotices: (config) =>
    config.sending?.postbox === undefined
      ? "carries postbox notices only with sending.postbox and the postbox's sending.destinationId"
      : undefined,
  configSchema: fitConnectConfigSchema,
  secrets: ['/clientSecret', '/receiving/callbackSecret'],
  example: {
    submissionApiUrl: 'https://submission-api-testing.fit-connect.fitko.dev',
    apiVersion: 'v1',
    tokenUrl: 'https://auth-testing.fit-connect.fitko.dev/token',
    clientId: 'a8f0a2f3-6c1e-4b8e-9d55-1c2b3d4e5f60',
    clientSecret: '${FIT_CONNECT_CLIENT_SECRET}',
    routingApiUrl: 'https://routing-api-testing.fit-connect.fitko.dev/v1',
    sending: {
      metadataVersion: '1.2.0',
      services: {
        '99123456760610': {
          name: 'Anmeldung einer Wohnung',
          schemaUri: 'urn:xoev-de:xmeld:standard:xmeld_3.3#meldung',
        },
      },
      trustAnchorFile: '/etc/amtsbote/fit-connect/root-ca.pem',
    },
    status: { enabled: true },
    receiving: {
      destinations: [
        {
          destinationId: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
          ars: '059130000000',
          decryptionKeyFile: '/etc/amtsbote/fit-connect/dest-decryption.jwk.json',
          signingKeyFile: '/etc/amtsbote/fit-connect/dest-signing.jwk.json',
        },
      ],
      maxAttachmentSize: '50mb',
      callbackSecret: '${FIT_CONNECT_CALLBACK_SECRET}',
    },
  },
  create: createFitConnectInstance,
});
