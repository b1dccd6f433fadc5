/**
 * A minimal FIT-Connect sender written straight against the HTTP API with jose, independent of the
 * adapter: it lets receiver tests craft submissions the adapter would never produce (wrong hashes,
 * incomplete metadata, mismatching attachment lists).
 */
import { createHash, randomUUID } from 'node:crypto';
import { CompactEncrypt, importJWK, type JWK } from 'jose';
import type { FitConnectFixture } from './fixture.js';
import { SCHEMA_URI, SERVICE_KEY } from './fixture.js';
import { encryptionJwk } from './keys.js';

export interface CraftedAttachment {
  readonly content: Buffer;
  readonly mimeType: string;
  readonly filename: string;
}

export interface CraftInput {
  readonly data: Buffer;
  readonly dataMimeType?: string;
  readonly attachments?: readonly CraftedAttachment[];
  /** Changes the metadata object before it is encrypted. */
  readonly mutateMetadata?: (metadata: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form test mutation
  readonly serviceKey?: string;
}

const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');

export async function craftSubmission(
  world: FitConnectFixture,
  input: CraftInput,
): Promise<{ submissionId: string; caseId: string }> {
  const api = `${world.emulator.url}/v1`;
  const tokenResponse = await fetch(world.emulator.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: world.client.clientId,
      client_secret: world.client.clientSecret,
    }),
  });
  const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
  const call = async (method: string, path: string, body: string, contentType: string): Promise<unknown> => {
    const response = await fetch(api + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
      body,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  const { key_ops: _ops, ...publicJwk } = encryptionJwk(world.keys.destinationEncryption) as JWK;
  const key = await importJWK(publicJwk, 'RSA-OAEP-256');
  const kid = world.keys.destinationEncryption.kid;
  const encrypt = (plaintext: Buffer, cty: string) =>
    new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid, cty })
      .encrypt(key);

  const attachments = (input.attachments ?? []).map((a) => ({ ...a, attachmentId: randomUUID() }));
  const created = (await call(
    'POST',
    '/submissions',
    JSON.stringify({
      destinationId: world.destination.destinationId,
      announcedAttachments: attachments.map((a) => a.attachmentId),
      serviceType: {
        identifier: `urn:de:fim:leika:leistung:${input.serviceKey ?? SERVICE_KEY}`,
        name: 'Test',
      },
    }),
    'application/json',
  )) as { submissionId: string; caseId: string };
  for (const a of attachments) {
    await call(
      'PUT',
      `/submissions/${created.submissionId}/attachments/${a.attachmentId}`,
      await encrypt(a.content, a.mimeType),
      'application/jose',
    );
  }
  const dataMimeType = input.dataMimeType ?? 'application/json';
  const metadata: Record<string, unknown> = {
    $schema: 'https://schema.fitko.de/fit-connect/metadata/1.2.0/metadata.schema.json',
    contentStructure: {
      data: {
        hash: { type: 'sha512', content: sha512(input.data) },
        submissionSchema: { schemaUri: SCHEMA_URI, mimeType: dataMimeType },
      },
      attachments: attachments.map((a) => ({
        attachmentId: a.attachmentId,
        hash: { type: 'sha512', content: sha512(a.content) },
        mimeType: a.mimeType,
        filename: a.filename,
        purpose: 'attachment',
      })),
    },
  };
  input.mutateMetadata?.(metadata);
  await call(
    'PUT',
    `/submissions/${created.submissionId}`,
    JSON.stringify({
      encryptedMetadata: await encrypt(Buffer.from(JSON.stringify(metadata)), 'application/json'),
      encryptedData: await encrypt(input.data, dataMimeType),
    }),
    'application/json',
  );
  return created;
}
