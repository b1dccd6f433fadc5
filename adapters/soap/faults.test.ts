import { expect } from 'chai';
import { classifyFault, faultCandidates, findFault, globMatch, readEnvelope } from './faults.js';

const rules = { retry: ['soap:Server'], permanent: ['PermissionDenied*'], default: 'permanent' } as const;

describe('SOAP fault reading and classification', () => {
  it('reads a SOAP 1.2 fault whatever prefixes the sender uses, and treats Receiver like Server', () => {
    const envelope = readEnvelope(
      '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault>' +
        '<e:Code><e:Value>e:Receiver</e:Value><e:Subcode><e:Value xmlns:app="urn:app">app:DatenbankWeg</e:Value></e:Subcode></e:Code>' +
        '<e:Reason><e:Text xml:lang="de">Datenbank nicht erreichbar</e:Text></e:Reason>' +
        '<e:Detail><x:TechnicalProblem xmlns:x="urn:app"/></e:Detail></e:Fault></e:Body></e:Envelope>',
    );
    expect(envelope.version).to.equal('1.2');
    const fault = findFault(envelope.body)!;
    expect(fault.soapCode).to.equal('soap:Receiver');
    expect(faultCandidates(fault)).to.include.members([
      'soap:Server',
      'soap:Receiver',
      'app:DatenbankWeg',
      'DatenbankWeg',
      'Datenbank nicht erreichbar',
      'TechnicalProblem',
    ]);
    expect(classifyFault(fault, rules)).to.deep.equal({ outcome: 'retry', pattern: 'soap:Server' });
  });

  it('does not mistake an application code for a SOAP code', () => {
    const envelope = readEnvelope(
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:fv="urn:fv"><s:Body><s:Fault>' +
        '<faultcode>fv:Server</faultcode><faultstring>nope</faultstring></s:Fault></s:Body></s:Envelope>',
    );
    const fault = findFault(envelope.body)!;
    expect(fault.soapCode).to.equal(undefined);
    expect(classifyFault(fault, rules)).to.deep.equal({ outcome: 'permanent', pattern: undefined });
  });

  it('lets a permanent pattern win over a retry pattern', () => {
    const envelope = readEnvelope(
      '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>' +
        '<faultcode>soap:Server</faultcode><faultstring>x</faultstring>' +
        '<detail><PermissionDeniedException xmlns="urn:xta"/></detail></soap:Fault></soap:Body></soap:Envelope>',
    );
    expect(classifyFault(findFault(envelope.body)!, rules)).to.deep.equal({
      outcome: 'permanent',
      pattern: 'PermissionDenied*',
    });
  });

  it('matches globs against the whole value only', () => {
    expect(globMatch('Busy*', 'Busy: später')).to.equal(true);
    expect(globMatch('Busy*', 'Not Busy')).to.equal(false);
    expect(globMatch('soap:Serv?r', 'soap:Server')).to.equal(true);
    expect(globMatch('a.b', 'axb')).to.equal(false);
  });

  it('refuses what is not a SOAP envelope', () => {
    expect(() => readEnvelope('<html><body/></html>')).to.throw(/not a SOAP Envelope/);
    expect(() => readEnvelope('Service Unavailable')).to.throw();
  });
});
