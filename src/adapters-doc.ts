/**
 * Renders the configuration section of an adapter's README from its manifest: the field table
 * (from `configSchema`), the secrets, the capabilities and the example as it stands in
 * `gateway.yaml`. `npm run docs:adapters` writes the sections between the markers, a test keeps
 * them in sync.
 */
import { stringify } from 'yaml';
import type { AdapterCapabilities, AdapterManifest } from './adapter-contract.js';
import { jsonPointer } from './json-text.js';

export const SECTION_START =
  '<!-- generated from manifest.ts by npm run docs:adapters: do not edit between these markers -->';
export const SECTION_END = '<!-- end of generated section -->';

type Schema = Readonly<Record<string, unknown>>;

/** One row of the configuration table. */
interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly presence: string;
  readonly description: string;
}

/** Where a field sits: how it is named, whether its parent requires it, in which forms it exists. */
interface Place {
  readonly segments: readonly Segment[];
  readonly required: boolean;
  /** Dotted paths of sibling fields that, when set, make this one required (`dependentRequired`). */
  readonly requiredWith: readonly string[];
  /** Names the forms of a `oneOf`/`anyOf` the field belongs to, e.g. "With `type: oauth2`:". */
  readonly note: string;
}

type Segment = { readonly name: string } | { readonly map: true } | { readonly items: true };

interface Forms {
  /** A property every form requires with a `const` value, e.g. `type` or `kind`. */
  readonly discriminator: string | undefined;
  readonly forms: readonly { readonly schema: Schema; readonly label: string }[];
}

const CAPABILITIES: readonly { readonly key: keyof AdapterCapabilities; readonly meaning: string }[] = [
  { key: 'outbound', meaning: 'delivers messages' },
  { key: 'inbound', meaning: 'receives messages pushed to the gateway' },
  { key: 'poll', meaning: 'fetches messages or status on a schedule' },
  { key: 'refresh', meaning: 're-reads routing and destination data on a schedule' },
];

/** The section (without the markers) for a README's `## Configuration`, before `formatMarkdown`. */
export function renderAdapterSection(manifest: AdapterManifest): string {
  const instanceId = manifest.type;
  const secretPaths = manifest.secrets.map((pointer) => pointerToPath(pointer));
  const rows = childRows(manifest.configSchema, [], new Set(manifest.secrets));
  for (const [i, pointer] of manifest.secrets.entries()) {
    if (!rows.some((row) => row.path === secretPaths[i])) {
      throw new Error(`adapter ${manifest.type}: secret ${pointer} names no field of its configSchema`);
    }
  }
  const table = [
    '| field | type | required / default | description |',
    '| --- | --- | --- | --- |',
    ...rows
      .map((row) => [`\`${row.path}\``, row.type, row.presence, row.description].map(cell).join(' | '))
      .map((line) => `| ${line} |`),
  ];
  const closed = manifest.configSchema.additionalProperties === false;
  const secrets =
    secretPaths.length === 0
      ? 'The adapter has no secret fields.'
      : `Secret fields (${secretPaths.map((p) => `\`${p}\``).join(', ')}) are masked wherever the ` +
        'configuration is printed. Write them as `${ENV_VAR}` (taken from the environment) or ' +
        '`${file:/run/secrets/name}` (the content of that file), never as the value itself.';
  const example = stringify(
    { adapters: { [instanceId]: { type: manifest.type, config: manifest.example } } },
    { lineWidth: 0, singleQuote: true },
  );
  return [
    `Adapter type \`${manifest.type}\`, version ${manifest.version}:`,
    '',
    ...CAPABILITIES.map(({ key, meaning }) =>
      capabilityLine(key, meaning, manifest.capabilities[key] ?? false),
    ),
    '',
    `The \`config:\` block of an instance${closed ? ' (keys not listed here are refused)' : ''}:`,
    '',
    ...table,
    '',
    secrets,
    '',
    '### Example',
    '',
    `The manifest's example as an instance in \`gateway.yaml\`; a test runs it through \`amtsbote check\`. ` +
      `The instance id (\`${instanceId}\` here) is yours to choose: routes and jobs refer to it.`,
    '',
    '```yaml',
    example.trimEnd(),
    '```',
    '',
  ].join('\n');
}

/** Formats markdown as `prettier --check` expects it at `filePath`; prettier, a dev tool, loads on use. */
export async function formatMarkdown(markdown: string, filePath: string): Promise<string> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(filePath)) ?? {};
  return prettier.format(markdown, { ...options, filepath: filePath, parser: 'markdown' });
}

/** The formatted section for the README at `readmePath`. */
export async function adapterSection(manifest: AdapterManifest, readmePath: string): Promise<string> {
  return formatMarkdown(renderAdapterSection(manifest), readmePath);
}

/** The text between the markers, or undefined when the README has no (or a broken) pair of markers. */
export function generatedSection(readme: string): string | undefined {
  const start = readme.indexOf(SECTION_START);
  const end = readme.indexOf(SECTION_END);
  const twice = readme.indexOf(SECTION_START, start + 1) >= 0 || readme.indexOf(SECTION_END, end + 1) >= 0;
  if (start < 0 || end < start || twice) return undefined;
  return readme
    .slice(start + SECTION_START.length, end)
    .replace(/^\n\n/, '')
    .replace(/\n$/, '');
}

/** Puts `section` between the markers of `readme`. */
export function replaceGeneratedSection(readme: string, section: string): string {
  if (generatedSection(readme) === undefined) {
    throw new Error(`no single pair of markers "${SECTION_START}" … "${SECTION_END}"`);
  }
  const start = readme.indexOf(SECTION_START) + SECTION_START.length;
  const end = readme.indexOf(SECTION_END);
  return `${readme.slice(0, start)}\n\n${section}\n${readme.slice(end)}`;
}

function capabilityLine(key: string, meaning: string, enabled: boolean): string {
  const line = `- **${key}** (${meaning}): ${enabled ? 'yes' : 'no'}`;
  if ((key === 'poll' || key === 'refresh') && enabled) {
    return `${line}; schedule it as a job with \`run: { adapter: <instance id>, task: ${key} }\` (see [docs/jobs.md](../../docs/jobs.md))`;
  }
  return line;
}

function childRows(schema: Schema, segments: readonly Segment[], secrets: ReadonlySet<string>): FieldRow[] {
  const rows: FieldRow[] = [];
  const properties = propertiesOf(schema);
  const required = stringList(schema.required);
  const dependents = (schema.dependentRequired ?? {}) as Record<string, readonly string[]>;
  for (const [name, property] of properties) {
    const requiredWith = Object.entries(dependents)
      .filter(([, needed]) => needed.includes(name))
      .map(([trigger]) => renderPath([...segments, { name: trigger }]));
    const place = {
      segments: [...segments, { name }],
      required: required.includes(name),
      requiredWith,
      note: '',
    };
    rows.push(...fieldRows(property, place, secrets));
  }
  const forms = objectForms(schema);
  if (forms) rows.push(...formRows(forms, segments, secrets));
  const values = schema.additionalProperties;
  if (isSchema(values) && hasFields(values))
    rows.push(...childRows(values, [...segments, { map: true }], secrets));
  const items = schema.items;
  if (isSchema(items) && hasFields(items))
    rows.push(...childRows(items, [...segments, { items: true }], secrets));
  return rows;
}

function fieldRows(schema: Schema, place: Place, secrets: ReadonlySet<string>): FieldRow[] {
  const pointer = toPointer(place.segments);
  const secret = pointer !== undefined && secrets.has(pointer);
  const text = describe(schema);
  const row: FieldRow = {
    path: renderPath(place.segments),
    type: typeText(schema) + (secret ? ', secret' : ''),
    presence: presenceText(schema, place),
    description:
      place.note === '' ? text : text === '' ? `${place.note.replace(/:$/, '')}.` : `${place.note} ${text}`,
  };
  return [row, ...childRows(schema, place.segments, secrets)];
}

/** Rows for the fields of object forms (`oneOf`/`anyOf` of objects), merged by name. */
function formRows(
  { discriminator, forms }: Forms,
  segments: readonly Segment[],
  secrets: ReadonlySet<string>,
): FieldRow[] {
  const rows: FieldRow[] = [];
  if (discriminator !== undefined) {
    const values = forms.map(({ schema: form }) => propertiesOf(form).get(discriminator)!.const);
    const explained = forms.map(({ schema: form }, i) => {
      const constant = propertiesOf(form).get(discriminator)!;
      const others = [...propertiesOf(form).keys()].filter((name) => name !== discriminator);
      const text =
        sentence(form.description) ||
        sentence(constant.description) ||
        (others.length > 0 ? `With ${others.map((n) => `\`${n}\``).join(', ')}.` : 'No further fields.');
      return `\`${inline(values[i])}\`: ${text}`;
    });
    rows.push({
      path: renderPath([...segments, { name: discriminator }]),
      type: values.map((value) => `\`${inline(value)}\``).join(' | '),
      presence: 'required',
      description: explained.join(' '),
    });
  }
  const names: string[] = [];
  for (const { schema: form } of forms) {
    for (const name of propertiesOf(form).keys())
      if (name !== discriminator && !names.includes(name)) names.push(name);
  }
  for (const name of names) {
    const holding = forms.filter(({ schema: form }) => propertiesOf(form).has(name));
    const property = propertiesOf(holding[0]!.schema).get(name)!;
    const inAll = holding.length === forms.length;
    const labels = holding.map((form) => form.label).join(' or ');
    const note = inAll ? '' : discriminator !== undefined ? `With ${labels}:` : `In ${labels}:`;
    const required = holding.every(({ schema: form }) => stringList(form.required).includes(name));
    const place = { segments: [...segments, { name }], required, requiredWith: [], note };
    rows.push(...fieldRows(property, place, secrets));
  }
  return rows;
}

/** The object forms of a `oneOf`/`anyOf`, or undefined when its branches are not all objects with fields. */
function objectForms(schema: Schema): Forms | undefined {
  const branches = (schema.oneOf ?? schema.anyOf) as readonly Schema[] | undefined;
  if (!branches || branches.length === 0 || !branches.every((b) => propertiesOf(b).size > 0))
    return undefined;
  const [first, ...rest] = branches;
  const discriminator = [...propertiesOf(first!).keys()].find((name) =>
    [first!, ...rest].every(
      (b) => propertiesOf(b).get(name)?.const !== undefined && stringList(b.required).includes(name),
    ),
  );
  const forms = branches.map((b, i) => ({
    schema: b,
    label:
      discriminator !== undefined
        ? `\`${discriminator}: ${inline(propertiesOf(b).get(discriminator)!.const)}\``
        : `form ${i + 1}`,
  }));
  return { discriminator, forms };
}

function typeText(schema: Schema): string {
  if (schema.const !== undefined) return `\`${inline(schema.const)}\``;
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => `\`${inline(value)}\``).join(' | ');
  const forms = objectForms(schema);
  if (forms)
    return forms.discriminator !== undefined ? 'object' : `object, one of ${forms.forms.length} forms`;
  const branches = (schema.oneOf ?? schema.anyOf) as readonly Schema[] | undefined;
  if (branches) {
    return branches
      .map((b) => {
        const text = sentence(b.description).replace(/\.$/, '');
        return text === '' ? typeText(b) : `${typeText(b)} (${lowerFirst(text)})`;
      })
      .join(' or ');
  }
  const type = Array.isArray(schema.type) ? (schema.type as string[]).join(' or ') : (schema.type as string);
  switch (type) {
    case 'integer':
    case 'number':
      return numberText(type, schema);
    case 'string': {
      const limits = [
        typeof schema.minLength === 'number' && schema.minLength > 1
          ? `at least ${schema.minLength} characters`
          : '',
        typeof schema.maxLength === 'number' ? `at most ${schema.maxLength} characters` : '',
      ];
      return ['string', ...limits].filter((part) => part !== '').join(', ');
    }
    case 'array': {
      const items = isSchema(schema.items) ? ` of ${typeText(schema.items)}` : '';
      const limits = [
        typeof schema.minItems === 'number' && schema.minItems > 0
          ? `at least ${schema.minItems} ${schema.minItems === 1 ? 'entry' : 'entries'}`
          : '',
        typeof schema.maxItems === 'number' ? `at most ${schema.maxItems} entries` : '',
        schema.uniqueItems === true ? 'no duplicates' : '',
      ];
      return [`array${items}`, ...limits].filter((part) => part !== '').join(', ');
    }
    case 'object': {
      const values = schema.additionalProperties;
      if (propertiesOf(schema).size > 0 || !isSchema(values)) return 'object';
      const keys =
        isSchema(schema.propertyNames) && Array.isArray(schema.propertyNames.enum)
          ? `, keys ${schema.propertyNames.enum.map((key) => `\`${inline(key)}\``).join(' | ')}`
          : '';
      return `map of ${typeText(values)}${keys}`;
    }
    case undefined:
      return 'any';
    default:
      return type;
  }
}

function numberText(type: string, schema: Schema): string {
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  if (min !== undefined && max !== undefined) return `${type}, ${min}–${max}`;
  if (min !== undefined) return `${type} ≥ ${min}`;
  if (max !== undefined) return `${type} ≤ ${max}`;
  return type;
}

function presenceText(schema: Schema, place: Place): string {
  const parts: string[] = [];
  if (place.required) parts.push('required');
  else if (place.requiredWith.length > 0) {
    parts.push(`required with ${place.requiredWith.map((path) => `\`${path}\``).join(', ')}`);
  }
  if (schema.default !== undefined) parts.push(`default \`${inline(schema.default)}\``);
  return parts.length > 0 ? parts.join('; ') : 'optional';
}

/** The field's description; for objects with unlabelled forms, what each form holds. */
function describe(schema: Schema): string {
  const text = sentence(schema.description);
  const forms = objectForms(schema);
  if (!forms || forms.discriminator !== undefined) {
    const values = schema.additionalProperties;
    if (isSchema(values) && !hasFields(values) && sentence(values.description) !== '') {
      return [text, `Values: ${lowerFirst(sentence(values.description))}`]
        .filter((part) => part !== '')
        .join(' ');
    }
    return text;
  }
  const shapes = forms.forms.map(({ schema: form, label }) => {
    const required = stringList(form.required);
    const names = [...propertiesOf(form).keys()].map((name) => (required.includes(name) ? name : `${name}?`));
    const about = sentence(form.description).replace(/\.$/, '');
    return `${upperFirst(label)}: \`{ ${names.join(', ')} }\`${about === '' ? '' : `, ${lowerFirst(about)}`}.`;
  });
  return [text, ...shapes].filter((part) => part !== '').join(' ');
}

/** A scalar or collection as YAML flow text, as it would be written in `gateway.yaml`. */
function inline(value: unknown): string {
  return stringify(value, {
    collectionStyle: 'flow',
    flowCollectionPadding: false,
    lineWidth: 0,
    singleQuote: true,
  }).trim();
}

function sentence(text: unknown): string {
  return typeof text === 'string' ? text.replace(/\s+/g, ' ').trim() : '';
}

/** "Milliseconds." → "milliseconds", leaving acronyms ("RFC …") alone. */
function lowerFirst(text: string): string {
  return /^[A-Z](?![A-Z0-9])/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

function upperFirst(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function propertiesOf(schema: Schema): ReadonlyMap<string, Schema> {
  const properties = schema.properties;
  return new Map(isSchema(properties) ? (Object.entries(properties) as [string, Schema][]) : []);
}

function hasFields(schema: Schema): boolean {
  return propertiesOf(schema).size > 0 || objectForms(schema) !== undefined;
}

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): readonly string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function renderPath(segments: readonly Segment[]): string {
  let path = '';
  for (const segment of segments) {
    if ('name' in segment) path += path === '' ? segment.name : `.${segment.name}`;
    else if ('map' in segment) path += '.<key>';
    else path += '[]';
  }
  return path;
}

/** The JSON pointer of a field, or undefined for one inside a map or an array. */
function toPointer(segments: readonly Segment[]): string | undefined {
  if (!segments.every((segment) => 'name' in segment)) return undefined;
  return jsonPointer(segments.map((segment) => segment.name));
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}
