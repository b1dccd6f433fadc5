/**
 * `GET /api/v1/applications/{id}`: the portal's view of one application. A client that may not
 * see the tenant gets the same 404 as for an unknown id, so ids of other tenants stay secret.
 */
import type { RequestHandler } from 'express';
import { AmtError } from '../errors.js';
import type { Store } from '../store/types.js';
import { clientOf, mayActFor } from './auth.js';
import { applicationStatusView } from './views.js';

export function applicationStatusHandler(store: Store): RequestHandler {
  return async (req, res) => {
    const client = clientOf(res);
    const id = String(req.params.id);
    const message = await store.getMessage(id);
    if (!message || !(client.admin || mayActFor(client, message.tenantId))) {
      throw new AmtError('AMT_NOT_FOUND', 'no application with this id is visible to this client');
    }
    const [history, citizen] = await Promise.all([store.history(id), store.citizenStatus(id)]);
    res.json(applicationStatusView(message, history, citizen));
  };
}
