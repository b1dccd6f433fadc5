/**
 * One configured SOAP operation: the WSDL is parsed once, then every call gets its own
 * `soap.Client` over that parsed WSDL, so per-call SOAP headers (the delivery id) never leak between
 * concurrent deliveries. TLS material is read and checked when the instance is created.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { Client, HttpClient, WSSecurity, createClientAsync, type IOptions, type WSDL } from 'soap';
import { AmtError } from '../../src/errors.js';
import type { TlsConfig, UsernameTokenConfig } from './config.js';
import { resolveOperation } from './wsdl.js';
import type { MtomPart } from './request-body.js';

export interface OperationTarget {
  readonly service: string;
  readonly port: string;
  readonly operation: string;
  readonly endpoint: string;
  readonly soapAction: string;
  /** Local name of the operation's request element (document style) or the operation (rpc). */
  readonly inputElement: string;
}

export interface CallOptions {
  /** Complete header elements, each serialised with its own namespace declarations. */
  readonly headers: readonly string[];
  readonly parts: readonly MtomPart[];
  readonly forceMtom: boolean;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

export interface CallOutcome {
  /** The operation result as the soap package parsed it. */
  readonly result: unknown;
  /** The raw answer (the root part for multipart answers). */
  readonly rawResponse: string;
  readonly httpStatus: number | undefined;
}

/** What the soap package's callback receives, as far as this adapter reads it. */
type SoapCallback = (err: unknown, result: unknown, rawResponse: unknown) => void;
type SoapMethod = (args: unknown, callback: SoapCallback, options: Record<string, unknown>) => void;

export function readTlsMaterial(
  config: TlsConfig,
  resolvePath: (configured: string) => string,
): https.AgentOptions {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(resolvePath(file));
    } catch (cause) {
      throw new AmtError(
        'AMT_CONFIG_INVALID',
        `cannot read the TLS ${what} ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
  };
  const material: https.AgentOptions = {
    ...(config.cert ? { cert: read(config.cert, 'certificate') } : {}),
    ...(config.key ? { key: read(config.key, 'key') } : {}),
    ...(config.ca ? { ca: read(config.ca, 'CA certificate') } : {}),
    ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}),
  };
  try {
    // Fails now, at start-up, on a wrong passphrase or a key that does not fit the certificate.
    tls.createSecureContext(material);
  } catch (cause) {
    throw new AmtError(
      'AMT_CONFIG_INVALID',
      `the TLS client certificate cannot be used: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return material;
}

export class SoapOperationClient {
  private wsdl: Promise<{ wsdl: WSDL; target: OperationTarget }> | undefined;
  private readonly agent: https.Agent;
  private readonly httpClient: HttpClient;
  private readonly security: WSSecurity | undefined;

  constructor(
    private readonly options: {
      readonly wsdl: string;
      readonly service: string | undefined;
      readonly port: string | undefined;
      readonly operation: string;
      readonly endpoint: string | undefined;
      readonly soapVersion: '1.1' | '1.2';
      readonly usernameToken: UsernameTokenConfig | undefined;
      readonly tls: TlsConfig | undefined;
      /** Resolves configured paths (relative to the configuration file). */
      readonly resolvePath: (configured: string) => string;
    },
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      ...(options.tls ? readTlsMaterial(options.tls, options.resolvePath) : {}),
    });
    this.httpClient = new HttpClient({ parseResponseAttachments: true });
    const token = options.usernameToken;
    this.security = token
      ? new WSSecurity(token.username, token.password, {
          passwordType: token.passwordType ?? 'PasswordDigest',
          hasTimeStamp: token.timestamp ?? true,
        })
      : undefined;
  }

  private clientOptions(): IOptions {
    return {
      forceSoap12Headers: this.options.soapVersion === '1.2',
      // Each instance parses its own copy: wsdl.options are shared state inside the soap package.
      disableCache: true,
      httpClient: this.httpClient,
      parseResponseAttachments: true,
    };
  }

  /** Parses the WSDL (once) and resolves service, port and operation. */
  target(): Promise<{ wsdl: WSDL; target: OperationTarget }> {
    this.wsdl ??= this.load().catch((err: unknown) => {
      this.wsdl = undefined;
      throw err;
    });
    return this.wsdl;
  }

  private async load(): Promise<{ wsdl: WSDL; target: OperationTarget }> {
    const file = this.options.resolvePath(this.options.wsdl);
    let client: Client;
    try {
      client = await createClientAsync(file, this.clientOptions());
    } catch (cause) {
      throw new AmtError(
        'AMT_SOAP_WSDL_INVALID',
        `cannot load the WSDL ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const definitions = client.wsdl.definitions;
    const { service, port, location, operation, method } = resolveOperation(definitions, file, this.options);
    const endpoint = this.options.endpoint ?? location;
    if (!/^https?:\/\//.test(endpoint ?? '')) {
      throw new AmtError(
        'AMT_SOAP_WSDL_INVALID',
        `no usable endpoint: the WSDL says ${String(endpoint)}; set endpoint`,
      );
    }
    const namespace = definitions.$targetNamespace as string;
    const soapAction =
      method.soapAction || `${namespace.endsWith('/') ? namespace : `${namespace}/`}${operation}`;
    return {
      wsdl: client.wsdl,
      target: {
        service,
        port,
        operation,
        endpoint,
        soapAction,
        inputElement: method.input?.$name ?? operation,
      },
    };
  }

  async call(args: unknown, options: CallOptions): Promise<CallOutcome> {
    const { wsdl, target } = await this.target();
    const client = new Client(wsdl, target.endpoint, this.clientOptions());
    if (this.security) client.setSecurity(this.security);
    for (const header of options.headers) client.addSoapHeader(header);
    let httpStatus: number | undefined;
    client.on('response', (_body: unknown, response: { status?: number } | undefined) => {
      httpStatus = response?.status;
    });
    // The soap package builds methods at run time from the WSDL, so they are untyped.
    const method = (client as unknown as Record<string, Record<string, Record<string, SoapMethod>>>)[
      target.service
    ]?.[target.port]?.[target.operation];
    if (!method) throw new AmtError('AMT_SOAP_WSDL_INVALID', `operation ${target.operation} is not callable`);
    const requestOptions: Record<string, unknown> = {
      timeout: options.timeoutMs,
      signal: options.signal,
      httpsAgent: this.agent,
    };
    if (options.forceMtom || options.parts.length > 0) {
      requestOptions.forceMTOM = true;
      requestOptions.attachments = options.parts;
    }
    return new Promise<CallOutcome>((resolve, reject) => {
      method(
        args,
        (err, result, rawResponse) => {
          if (err !== null && err !== undefined) {
            reject(err);
            return;
          }
          resolve({ result, rawResponse: typeof rawResponse === 'string' ? rawResponse : '', httpStatus });
        },
        requestOptions,
      );
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
