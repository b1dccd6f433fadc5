/**
 * `POST /api/v1/status`: a Fachverfahren reports the status of an application it received. Only
 * clients configured with `statusReporter` may, and only about delivered applications of their
 * tenants (and of the adapter instances they are limited to). The answer says which citizen
 * status the report led to.
 */
import type { RequestHandler } from 'express';
import type { GatewayConfig } from '../config/types.js';
import { AmtError } from '../errors.js';
import type { MessageLocator, StatusReporter, StatusService } from '../status/context.js';
import { clientOf } from './auth.js';
import { bodyKind, readJsonBody } from './body.js';
import { validationProblems, type RequestValidators } from './openapi.js';

interface StatusReportBody {
  readonly messageId?: string;
  readonly deliveryId?: string;
  readonly remoteReference?: string;
  readonly status: string;
  readonly detail?: Record<string, unknown>;
}

export function statusReportHandler(deps: {
  readonly config: GatewayConfig;
  readonly status: StatusService;
  readonly validators: RequestValidators;
}): RequestHandler {
  const reporters = new Map(
    deps.config.clients
      .filter((c) => c.statusReporter !== undefined && c.statusReporter !== false)
      .map((c): [string, StatusReporter] => [
        c.id,
        {
          kind: 'client',
          id: c.id,
          tenants: new Set(c.tenants),
          adapters: Array.isArray(c.statusReporter) ? c.statusReporter : undefined,
        },
      ]),
  );
  return async (req, res) => {
    const reporter = reporters.get(clientOf(res).id);
    if (!reporter) throw new AmtError('AMT_FORBIDDEN', 'this client is not configured as a status reporter');
    bodyKind(req, ['json']);
    const body = await readJsonBody(req, deps.config.server.bodyLimitBytes);
    const validate = deps.validators.statusReport;
    if (!validate(body)) {
      throw new AmtError('AMT_VALIDATION_FAILED', 'the status report does not match its schema', {
        problems: validationProblems(validate.errors),
      });
    }
    const report = body as StatusReportBody;
    const locator: MessageLocator =
      report.messageId !== undefined
        ? { messageId: report.messageId }
        : report.deliveryId !== undefined
          ? { deliveryId: report.deliveryId }
          : { remoteReference: report.remoteReference ?? '' };
    const message = await deps.status.locate(locator, reporter);
    const recorded = await deps.status.report(
      { messageId: message.id, status: report.status, detail: report.detail },
      reporter,
    );
    res.json({
      applicationId: recorded.messageId,
      remoteStatus: recorded.remoteStatus,
      citizenStatus: recorded.citizenStatus ?? null,
      citizenText: recorded.citizenText ?? null,
      repeated: recorded.repeated,
      notifications: recorded.notifications,
    });
  };
}
