/**
 * The `file-drop` adapter: writes each message as a file into a directory (usually a share) that
 * a Fachverfahren imports from. This file is the single declaration of its configuration.
 */
import { defineAdapter } from '../../src/adapter-contract.js';
import { createFileDrop } from './file-drop.js';
import type { InboxConfig } from './inbox.js';

export interface FileDropConfig {
  readonly directory: string;
  readonly fileName?: string;
  readonly sidecar?: boolean;
  readonly attachments?: 'copy' | 'omit';
  readonly fileMode?: string;
  readonly inbox?: InboxConfig;
}

const xmlPath = {
  type: 'string',
  pattern: '^(/([A-Za-z_][A-Za-z0-9_.-]*:)?[A-Za-z_][A-Za-z0-9_.-]*)+$',
} as const;

export const fileDropConfigSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  description: 'Writes each message atomically as a file into a directory an importer watches.',
  additionalProperties: false,
  required: ['directory'],
  properties: {
    directory: {
      type: 'string',
      minLength: 1,
      description:
        'Directory the files are written to; created (with parents) if missing, with the mode from `fileMode` plus execute bits. Use an absolute path; a relative one is taken from the working directory.',
    },
    fileName: {
      type: 'string',
      default: '{deliveryId}{ext}',
      pattern: '^(?!\\.)([A-Za-z0-9._-]|\\{(deliveryId|messageId|service|ars|reference|ext)\\})+$',
      description:
        'Name of the main file. Placeholders: `{deliveryId}`, `{messageId}`, `{service}`, `{ars}`, `{reference}` (reduced to `A-Za-z0-9._-`) and `{ext}` (`.xml` for XML types, `.json` for JSON types, `.txt` for `text/plain`, otherwise `.bin`). Literal characters: `A-Za-z0-9._-`, no leading dot.',
    },
    sidecar: {
      type: 'boolean',
      default: true,
      description:
        'Also write `<name>.meta.json` with ids, tenant, service, reference, content type, SHA-256 of the message and of each attachment, and the time of writing.',
    },
    attachments: {
      enum: ['copy', 'omit'],
      default: 'copy',
      description:
        '`copy`: write the attachments into the directory `<name>.attachments/`. `omit`: leave them out.',
    },
    fileMode: {
      type: 'string',
      pattern: '^0?[0-7]{3}$',
      default: '0640',
      description:
        'Permissions of the written files as an octal string, applied exactly (not reduced by the umask); directories the adapter creates get the matching execute bits (`0640` → `0750`).',
    },
    inbox: {
      type: 'object',
      additionalProperties: false,
      required: ['directory'],
      description:
        'The receiving side: response and status files the Fachverfahren drops here are reported as statuses of the deliveries they name, then moved to `processed/` or `failed/` below it. Without it the adapter only writes.',
      properties: {
        directory: {
          type: 'string',
          minLength: 1,
          description:
            'Directory the Fachverfahren writes response files to; `processing/`, `processed/` and `failed/` are created inside it (the same file system, so every move is an atomic rename).',
        },
        minAge: {
          default: '2s',
          description:
            'A file is picked up only once it is this old (milliseconds or `500ms`, `2s` …), for writers that do not rename finished files into place.',
          oneOf: [
            { type: 'integer', minimum: 0, description: 'Milliseconds.' },
            { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$', description: 'Duration with unit.' },
          ],
        },
        xml: {
          type: 'object',
          additionalProperties: false,
          required: ['deliveryId', 'status'],
          description:
            'Where XML response files hold the delivery id, the status and an optional text: paths from the root element, matched by namespace URI.',
          properties: {
            namespaces: {
              type: 'object',
              description: 'Prefix → namespace URI for the prefixes the paths use.',
              propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$' },
              additionalProperties: { type: 'string', minLength: 1, description: 'Namespace URI.' },
            },
            deliveryId: {
              ...xmlPath,
              description: 'Path of the delivery id, e.g. `/r:Rueckmeldung/r:DeliveryId`.',
            },
            status: { ...xmlPath, description: 'Path of the status value.' },
            text: { ...xmlPath, description: 'Path of an optional text for the citizen.' },
          },
        },
      },
    },
  },
} as const;

export const fileDropExample: FileDropConfig = {
  directory: '/mnt/fachverfahren/meldewesen/eingang',
  fileName: 'antrag_{ars}_{reference}_{deliveryId}{ext}',
  sidecar: true,
  attachments: 'copy',
  fileMode: '0640',
  inbox: {
    directory: '/mnt/fachverfahren/meldewesen/rueckmeldungen',
    minAge: '2s',
    xml: {
      namespaces: { r: 'urn:example:meldewesen:rueckmeldung' },
      deliveryId: '/r:Rueckmeldung/r:DeliveryId',
      status: '/r:Rueckmeldung/r:Status',
      text: '/r:Rueckmeldung/r:Hinweis',
    },
  },
};

export const fileDropAdapter = defineAdapter<FileDropConfig>({
  type: 'file-drop',
  version: '1.0.0',
  description:
    'Writes messages atomically, exactly once per delivery, as files (with sidecar and attachments) into a directory an importer reads; reads response files with statuses back from an inbox.',
  capabilities: { outbound: true, inbound: false, poll: true },
  configSchema: fileDropConfigSchema,
  secrets: [],
  example: fileDropExample,
  create: (context, config) => createFileDrop(context, config),
});
