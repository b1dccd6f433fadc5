/**
 * The adapter registry: a plain list. The core knows adapters only through these manifests;
 * adding an adapter means adding its manifest here.
 */
import type { AdapterManifest } from '../src/adapter-contract.js';
import { fileDropAdapter } from './file-drop/manifest.js';
import { fitConnectAdapter } from './fit-connect/manifest.js';
import { httpAdapter } from './http/manifest.js';
import { postboxAdapter } from './postbox/manifest.js';
import { soapAdapter } from './soap/manifest.js';
import { xta2Adapter } from './xta2/manifest.js';

export const manifests: readonly AdapterManifest[] = [
  httpAdapter,
  fileDropAdapter,
  soapAdapter,
  xta2Adapter,
  postboxAdapter,
  fitConnectAdapter,
];
