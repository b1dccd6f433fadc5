/**
 * What a peer writes about an application — a problem's detail, a SOAP fault's reason — may name
 * the applicant. Adapters quote it in their error messages; the gateway's logs mask every quoted
 * part, while the message's history keeps it whole for the admin API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { classifyFailure } from '../../adapters/fit-connect/client.js';
import { httpAdapter } from '../../adapters/http/manifest.js';
import { fakeContext, makeDelivery, settle, startServer } from '../../adapters/http/test-support.js';
import { describeFault, findFault } from '../../adapters/soap/faults.js';
import { failureFromFault } from '../../adapters/xta2/exceptions.js';
import { quotePeerText } from '../../src/adapter-contract.js';
import type { AmtError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/log.js';
import { child, parseXml } from '../../src/xml/element-tree.js';

const NAME = 'Erika Mustermann';
const BIRTH = '12.08.1964';
const DETAIL = `Antragstellerin ${NAME}, geb. ${BIRTH}, ist im Melderegister "nicht" bekannt`;

/** The line the gateway's logger writes for `error`, as the pipeline logs a failed delivery. */
function logged(error: unknown): string {
  let text = '';
  const logger = createLogger({
    stream: new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString('utf8');
        done();
      },
    }),
  });
  logger.warn('delivery failed', { error });
  return text;
}

function expectMaskedInLog(error: Error, keep: string): void {
  const line = logged(error);
  expect(line).to.include(keep);
  expect(line).not.to.include('Mustermann');
  expect(line).not.to.include(BIRTH);
}

function soapBody(xml: string) {
  const envelope = parseXml(xml);
  return child(envelope, envelope.uri, 'Body')!;
}

describe('free text from peers in error messages', () => {
  it('is quoted as JSON writes it, on one line and shortened, so one quoted part holds it all', () => {
    expect(quotePeerText('a "b" \\ c\n\td')).to.equal('"a \\"b\\" \\\\ c d"');
    expect(quotePeerText('x'.repeat(300), 10)).to.equal(`"${'x'.repeat(10)}…"`);
    const line = logged(new Error(`receiver: ${quotePeerText(DETAIL)}`));
    expect(line).not.to.include('Mustermann').and.not.to.include('bekannt');
  });

  it('http: the problem title stays readable in the log, the detail is masked there and kept in the error', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-peer-text-'));
    const receiver = await startServer((_req, res) => {
      res.writeHead(422, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ title: 'Antrag nicht verarbeitbar', detail: DETAIL }));
    });
    try {
      const instance = httpAdapter.create(fakeContext(dir), { url: `${receiver.url}/antraege` });
      const { error } = await settle(instance.deliver!(makeDelivery(), new AbortController().signal));
      const err = error as AmtError;
      expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
      expect(err.message).to.include(`Antrag nicht verarbeitbar — ${JSON.stringify(DETAIL)}`);
      expectMaskedInLog(err, 'Antrag nicht verarbeitbar');
      await instance.close?.();
    } finally {
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SOAP: the fault code stays readable, the reason is masked', () => {
    const fault = findFault(
      soapBody(
        `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>` +
          `<faultcode>soap:Client</faultcode><faultstring>${DETAIL.replace(/"/g, '&quot;')}</faultstring>` +
          `</soap:Fault></soap:Body></soap:Envelope>`,
      ),
    )!;
    const message = describeFault(fault);
    expect(message).to.equal(`SOAP fault soap:Client: ${JSON.stringify(DETAIL)}`);
    expectMaskedInLog(new Error(message), 'soap:Client');
  });

  it('XTA: the exception and its code stay readable, the reason is masked', () => {
    const failure = failureFromFault(
      soapBody(
        `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault>` +
          `<s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang="de">${DETAIL.replace(/"/g, '&quot;')}</s:Text></s:Reason>` +
          `</s:Fault></s:Body></s:Envelope>`,
      ),
      500,
    )!;
    expect(failure.message).to.equal(`SOAP fault s:Sender: ${JSON.stringify(DETAIL)} (HTTP 500)`);
    expectMaskedInLog(failure, 's:Sender');
  });

  it('FIT-Connect: the problem title stays readable, the detail is masked', () => {
    const error = classifyFailure('submission', {
      status: 422,
      headers: new Headers({ 'content-type': 'application/problem+json' }),
      text: JSON.stringify({ title: 'Invalid submission', detail: DETAIL }),
    });
    expect(error.message).to.equal(
      `FIT-Connect submission failed with HTTP 422 (Invalid submission): ${JSON.stringify(DETAIL)}`,
    );
    expectMaskedInLog(error, 'Invalid submission');
  });
});
