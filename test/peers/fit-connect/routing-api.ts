/**
 * The emulator's Routing API (`GET /routes?leikaKey=&ars=`, spec 2.0.0 in
 * shared/standards/fit-connect/routing-api.yaml) and the signing of `destinationSignature`, the
 * addressing data as a FIM editorial system signs it.
 */
import { randomUUID } from 'node:crypto';
import express, { type Router } from 'express';
import { CompactSign, importJWK } from 'jose';
import { signingJwk, type RsaKeyPair } from './keys.js';
import type { EmulatorState } from './state.js';

export function routingRouter(state: EmulatorState, routingKey: RsaKeyPair): Router {
  const router = express.Router();
  const badRequest = (res: express.Response, detail: string) =>
    res
      .status(400)
      .type('application/problem+json')
      .send(JSON.stringify({ type: 'about:blank', title: 'Bad Request', status: 400, detail }));
  router.get('/jwks.json', (_req, res) => {
    res.json({ keys: [signingJwk(routingKey)] });
  });
  router.get('/v1/routes', (req, res) => {
    const { leikaKey, ars } = req.query as Record<string, string | undefined>;
    if (!leikaKey || !/^99\d{12}$/.test(leikaKey))
      return void badRequest(res, 'leikaKey is missing or invalid');
    if (!ars || !/^(\d{2}|\d{3}|\d{5}|\d{9}|\d{12})$/.test(ars))
      return void badRequest(res, 'ars is invalid');
    const routes = state.routes
      .filter((r) => r.leikaKey === leikaKey && ars.startsWith(r.ars))
      .map((r) => ({
        destinationId: r.destinationId,
        destinationSignature: r.destinationSignature,
        destinationName: 'Test',
      }));
    res.json({ count: routes.length, offset: 0, totalCount: routes.length, routes });
  });
  return router;
}

/** A destinationSignature for a route: PS512 JWS over destination, services and areas. */
export async function signRoute(input: {
  signer: RsaKeyPair;
  ars: string;
  leikaKey: string;
  destinationId: string;
  submissionHost: string;
  issuer: string;
}): Promise<string> {
  const claims = {
    submissionHost: input.submissionHost,
    iss: input.issuer,
    services: [
      {
        gebietIDs: [`urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs:${input.ars.padEnd(12, '0')}`],
        leistungIDs: [`urn:de:fim:leika:leistung:${input.leikaKey}`],
      },
    ],
    destinationId: input.destinationId,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
  };
  const key = await importJWK({ ...input.signer.privateJwk, alg: 'PS512' }, 'PS512');
  return new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'PS512', typ: 'JWT', kid: input.signer.kid })
    .sign(key);
}
