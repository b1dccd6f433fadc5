/**
 * Peer callbacks into adapters (`POST /api/v1/callbacks/{instanceId}`): the raw body and headers
 * go to the adapter instance, which authenticates the peer itself and answers.
 */
import express, { type RequestHandler } from 'express';
import type { AdapterInstance } from '../adapter-contract.js';
import { AmtError } from '../errors.js';

export function callbackHandlers(
  adapters: ReadonlyMap<string, AdapterInstance>,
  limitBytes: number,
): RequestHandler[] {
  const handle: RequestHandler = async (req, res) => {
    const instance = adapters.get(String(req.params.instanceId));
    if (!instance?.handleCallback)
      throw new AmtError('AMT_NOT_FOUND', 'no adapter instance takes callbacks here');
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await instance.handleCallback({ headers: req.headers, rawBody });
    res.status(answer.status).type(answer.contentType);
    if (typeof answer.body === 'string' || Buffer.isBuffer(answer.body)) res.send(answer.body);
    else if (answer.body === undefined) res.end();
    else res.send(JSON.stringify(answer.body));
  };
  return [express.raw({ type: () => true, limit: limitBytes }), handle];
}
