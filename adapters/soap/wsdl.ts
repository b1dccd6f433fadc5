/**
 * Picking the configured service, port and operation out of a WSDL the soap package parsed;
 * each defaults to the first one the WSDL has. Used for the delivery client and the status
 * callback alike.
 */
import type { WSDL } from 'soap';
import { AmtError } from '../../src/errors.js';

type Definitions = WSDL['definitions'];
type Port = Definitions['services'][string]['ports'][string];
type Method = Port['binding']['methods'][string];

export interface WsdlOperation {
  readonly service: string;
  readonly port: string;
  readonly location: Port['location'];
  readonly operation: string;
  readonly method: Method;
}

export function resolveOperation(
  definitions: Definitions,
  file: string,
  wanted: { readonly service?: string; readonly port?: string; readonly operation?: string },
): WsdlOperation {
  const serviceName = wanted.service ?? Object.keys(definitions.services)[0];
  const service = serviceName === undefined ? undefined : definitions.services[serviceName];
  if (!service || serviceName === undefined) {
    throw new AmtError(
      'AMT_SOAP_WSDL_INVALID',
      `the WSDL ${file} has no service ${wanted.service ?? ''}`.trim(),
    );
  }
  const portName = wanted.port ?? Object.keys(service.ports)[0];
  const port = portName === undefined ? undefined : service.ports[portName];
  if (!port || portName === undefined) {
    throw new AmtError(
      'AMT_SOAP_WSDL_INVALID',
      `service ${serviceName} has no port ${wanted.port ?? ''}`.trim(),
    );
  }
  const methods = port.binding.methods;
  const operation = wanted.operation ?? Object.keys(methods)[0];
  const method = operation === undefined ? undefined : methods[operation];
  if (!method || operation === undefined) {
    throw new AmtError(
      'AMT_SOAP_WSDL_INVALID',
      `port ${portName} has no operation ${wanted.operation ?? ''} (it has: ${Object.keys(methods).join(', ')})`,
    );
  }
  return { service: serviceName, port: portName, location: port.location, operation, method };
}
