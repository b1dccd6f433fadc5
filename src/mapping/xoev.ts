/**
 * XÖV helpers for mapping files. Each helper is a rule that expands, at compile time, into the
 * ordinary rules that fill a message header — so headers are checked, ordered and run like
 * any other rule:
 *
 *   g2gHeader          newer generation: XÖV-Basisnachricht g2g 1.1 `nachrichtenkopf.g2g`
 *                      (identifikation.nachricht, leser, autor with verzeichnisdienst/kennung/name)
 *   legacyHeader       older generation: `nachrichtenkopf` with identifikation.nachricht and
 *                      leser/autor → behoerdenkennung {praefix, kennung}, in the standard's namespace
 *   xdomeaKopf         xdomea's own Kopf (ProzessID, Nachrichtentyp, Erstellungszeitpunkt,
 *                      Absender, Empfaenger, SendendesSystem)
 *   xoevRootAttributes produkt, produkthersteller, produktversion, standard, version (, test)
 *
 * A field is a constant (`name: Stadt Musterstadt`) or a value rule (`{ from: message.tenant.name }`).
 * A code field is `{ code: …, listURI: …, listVersionID: …, name: … }` (each part a field).
 */
import { amtsboteVersion } from '../version.js';
import { PathSpecError } from './paths.js';
import type { XmlAttribute, XmlElement, XmlNode } from '../xml/tree.js';

export const G2G_NAMESPACE = 'http://xoev.de/schemata/basisnachricht/g2g/1_1';
export const BEHOERDE_NAMESPACE = 'http://xoev.de/schemata/basisnachricht/behoerde/1_1';
export const XDOMEA_NAMESPACE = 'urn:xoev-de:xdomea:schema:3.0.0';
export const XDOMEA_NACHRICHTENTYP_LIST = {
  listURI: 'urn:xoev-de:xdomea:codeliste:nachrichtentyp',
  listVersionID: '2.0',
};

export const MACRO_KEYS = ['g2gHeader', 'legacyHeader', 'xdomeaKopf', 'xoevRootAttributes'] as const;
export type MacroKey = (typeof MACRO_KEYS)[number];

type Rule = Record<string, unknown>;
type Spec = Record<string, unknown>;

export function expandMacro(key: MacroKey, rule: Rule, namespaces: Readonly<Record<string, string>>): Rule[] {
  const extra = Object.keys(rule).filter((k) => k !== key && k !== 'when');
  if (extra.length > 0)
    throw new PathSpecError(`a ${key} rule has only ${key} (and when), not ${extra.join(', ')}`);
  const spec = rule[key];
  if (!isRecord(spec)) throw new PathSpecError(`${key} needs a map of header fields`);
  const rules = (() => {
    switch (key) {
      case 'g2gHeader':
        return g2gHeader(spec, namespaces);
      case 'legacyHeader':
        return legacyHeader(spec);
      case 'xdomeaKopf':
        return xdomeaKopf(spec, namespaces);
      case 'xoevRootAttributes':
        return rootAttributes(spec);
    }
  })();
  return rule['when'] === undefined ? rules : [{ rules, when: rule['when'] }];
}

function prefixFor(namespaces: Readonly<Record<string, string>>, uri: string, what: string): string {
  const prefix = Object.entries(namespaces).find(([, ns]) => ns === uri)?.[0];
  if (prefix === undefined)
    throw new PathSpecError(`${what} needs target.namespaces to bind a prefix to ${uri}`);
  return prefix;
}

function g2gHeader(spec: Spec, namespaces: Readonly<Record<string, string>>): Rule[] {
  allowKeys(
    spec,
    ['to', 'nachrichtenUUID', 'nachrichtentyp', 'erstellungszeitpunkt', 'leser', 'autor'],
    'g2gHeader',
  );
  const g2g = prefixFor(namespaces, G2G_NAMESPACE, 'g2gHeader');
  const beh = prefixFor(namespaces, BEHOERDE_NAMESPACE, 'g2gHeader');
  const base = typeof spec['to'] === 'string' ? spec['to'] : `${g2g}:nachrichtenkopf.g2g`;
  const id = `${base}/${g2g}:identifikation.nachricht`;
  const behoerde = (role: 'leser' | 'autor'): Rule[] => {
    const party = spec[role];
    if (!isRecord(party))
      throw new PathSpecError(`g2gHeader.${role} needs verzeichnisdienst, kennung and name`);
    allowKeys(party, ['verzeichnisdienst', 'kennung', 'name'], `g2gHeader.${role}`);
    const at = `${base}/${g2g}:${role}`;
    return [
      ...codeRules(
        `${at}/${beh}:verzeichnisdienst`,
        required(party, 'verzeichnisdienst', `g2gHeader.${role}`),
      ),
      field(`${at}/${beh}:kennung`, required(party, 'kennung', `g2gHeader.${role}`)),
      field(`${at}/${beh}:name`, required(party, 'name', `g2gHeader.${role}`)),
    ];
  };
  return [
    field(
      `${id}/${g2g}:nachrichtenUUID`,
      spec['nachrichtenUUID'] ?? { uuid: { from: 'message.deliveryId' } },
    ),
    ...codeRules(`${id}/${g2g}:nachrichtentyp`, required(spec, 'nachrichtentyp', 'g2gHeader')),
    field(`${id}/${g2g}:erstellungszeitpunkt`, spec['erstellungszeitpunkt'] ?? { now: 'dateTime' }),
    ...behoerde('leser'),
    ...behoerde('autor'),
  ];
}

function legacyHeader(spec: Spec): Rule[] {
  allowKeys(
    spec,
    ['to', 'nachrichtenUUID', 'nachrichtentyp', 'erstellungszeitpunkt', 'leser', 'autor'],
    'legacyHeader',
  );
  if (typeof spec['to'] !== 'string' || !spec['to'].includes(':')) {
    throw new PathSpecError(
      'legacyHeader needs to: PREFIX:nachrichtenkopf (the header is in the standard’s namespace)',
    );
  }
  const base = spec['to'];
  const last = base.split('/').pop()!;
  const p = last.slice(0, last.indexOf(':'));
  const id = `${base}/${p}:identifikation.nachricht`;
  const party = (role: 'leser' | 'autor'): Rule[] => {
    const value = spec[role];
    if (value === undefined) return [];
    if (!isRecord(value)) throw new PathSpecError(`legacyHeader.${role} needs praefix and kennung`);
    allowKeys(value, ['praefix', 'kennung'], `legacyHeader.${role}`);
    const at = `${base}/${p}:${role}/${p}:behoerdenkennung`;
    return [
      ...codeRules(`${at}/${p}:praefix`, required(value, 'praefix', `legacyHeader.${role}`)),
      ...codeRules(`${at}/${p}:kennung`, required(value, 'kennung', `legacyHeader.${role}`)),
    ];
  };
  return [
    field(`${id}/${p}:nachrichtenUUID`, spec['nachrichtenUUID'] ?? { uuid: { from: 'message.deliveryId' } }),
    ...codeRules(`${id}/${p}:nachrichtentyp`, required(spec, 'nachrichtentyp', 'legacyHeader')),
    field(`${id}/${p}:erstellungszeitpunkt`, spec['erstellungszeitpunkt'] ?? { now: 'dateTime' }),
    ...party('leser'),
    ...party('autor'),
  ];
}

function xdomeaKopf(spec: Spec, namespaces: Readonly<Record<string, string>>): Rule[] {
  allowKeys(
    spec,
    [
      'to',
      'prozessID',
      'nachrichtentyp',
      'erstellungszeitpunkt',
      'absender',
      'empfaenger',
      'sendendesSystem',
    ],
    'xdomeaKopf',
  );
  const x = prefixFor(namespaces, XDOMEA_NAMESPACE, 'xdomeaKopf');
  const base = typeof spec['to'] === 'string' ? spec['to'] : `${x}:Kopf`;
  const nachrichtentyp = required(spec, 'nachrichtentyp', 'xdomeaKopf');
  const kontakt = (role: 'Absender' | 'Empfaenger'): Rule[] => {
    const key = role.toLowerCase();
    const value = spec[key];
    if (!isRecord(value))
      throw new PathSpecError(`xdomeaKopf.${key} needs at least institution or behoerdenschluessel`);
    allowKeys(
      value,
      ['behoerdenschluessel', 'praefix', 'institution', 'kurzbezeichnung', 'organisationseinheit'],
      `xdomeaKopf.${key}`,
    );
    const at = `${base}/${x}:${role}`;
    return [
      ...(value['behoerdenschluessel'] === undefined
        ? []
        : codeRules(`${at}/${x}:Behoerdenkennung/${x}:Behoerdenschluessel`, value['behoerdenschluessel'])),
      ...(value['praefix'] === undefined
        ? []
        : codeRules(`${at}/${x}:Behoerdenkennung/${x}:Praefix`, value['praefix'])),
      ...optionalField(`${at}/${x}:Institution/${x}:Name`, value['institution']),
      ...optionalField(`${at}/${x}:Institution/${x}:Kurzbezeichnung`, value['kurzbezeichnung']),
      ...optionalField(`${at}/${x}:Organisationseinheit/${x}:Name`, value['organisationseinheit']),
    ];
  };
  const system = spec['sendendesSystem'];
  const systemRules: Rule[] = [];
  if (system !== undefined && system !== false && system !== 'false') {
    const values = isRecord(system) ? system : {};
    allowKeys(values, ['instanzID', 'produktname', 'version'], 'xdomeaKopf.sendendesSystem');
    systemRules.push(
      ...optionalField(`${base}/${x}:SendendesSystem/${x}:InstanzID`, values['instanzID']),
      field(`${base}/${x}:SendendesSystem/${x}:Produktname`, values['produktname'] ?? 'amtsbote'),
      field(`${base}/${x}:SendendesSystem/${x}:Version`, values['version'] ?? amtsboteVersion()),
    );
  }
  return [
    field(`${base}/${x}:ProzessID`, spec['prozessID'] ?? { uuid: { from: 'message.deliveryId' } }),
    ...codeRules(
      `${base}/${x}:Nachrichtentyp`,
      isRecord(nachrichtentyp) && 'code' in nachrichtentyp
        ? nachrichtentyp
        : { code: nachrichtentyp, ...XDOMEA_NACHRICHTENTYP_LIST },
    ),
    field(`${base}/${x}:Erstellungszeitpunkt`, spec['erstellungszeitpunkt'] ?? { now: 'dateTime' }),
    ...kontakt('Absender'),
    ...kontakt('Empfaenger'),
    ...systemRules,
  ];
}

function rootAttributes(spec: Spec): Rule[] {
  allowKeys(
    spec,
    ['produkt', 'produkthersteller', 'produktversion', 'standard', 'version', 'test'],
    'xoevRootAttributes',
  );
  return [
    field('@produkt', spec['produkt'] ?? 'amtsbote'),
    field('@produkthersteller', spec['produkthersteller'] ?? 'amtsbote'),
    field('@produktversion', spec['produktversion'] ?? amtsboteVersion()),
    field('@standard', required(spec, 'standard', 'xoevRootAttributes')),
    field('@version', required(spec, 'version', 'xoevRootAttributes')),
    ...optionalField('@test', spec['test']),
  ];
}

/** A code-typed element: `<code>` (+ `<name>`) and the listURI / listVersionID attributes. */
function codeRules(to: string, spec: unknown): Rule[] {
  const parts = isRecord(spec) && 'code' in spec ? spec : { code: spec };
  allowKeys(parts, ['code', 'name', 'listURI', 'listVersionID'], to);
  return [
    field(`${to}/code`, parts['code'], true),
    ...optionalField(`${to}/name`, parts['name']),
    ...optionalField(`${to}/@listURI`, parts['listURI']),
    ...optionalField(`${to}/@listVersionID`, parts['listVersionID']),
  ];
}

function field(to: string, spec: unknown, isRequired = false): Rule {
  const rule: Rule = isRecord(spec)
    ? { ...spec, to }
    : { to, value: spec === undefined ? undefined : String(spec) };
  if (isRequired && rule['required'] === undefined) rule['required'] = true;
  return rule;
}

function optionalField(to: string, spec: unknown): Rule[] {
  return spec === undefined || spec === null ? [] : [field(to, spec)];
}

function required(spec: Spec, key: string, where: string): unknown {
  const value = spec[key];
  if (value === undefined || value === null || value === '')
    throw new PathSpecError(`${where}.${key} is required`);
  return value;
}

function allowKeys(spec: Spec, allowed: readonly string[], where: string): void {
  const unknown = Object.keys(spec).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new PathSpecError(`${where}: unknown field(s) ${unknown.join(', ')} (${allowed.join(', ')})`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- building headers in code -----------------------------------------------------------------

export interface CodeFields {
  readonly code: string;
  readonly name?: string;
  readonly listURI?: string;
  readonly listVersionID?: string;
}

export interface G2gParty {
  readonly verzeichnisdienst: CodeFields;
  readonly kennung: string;
  readonly name: string;
}

export interface G2gHeaderFields {
  readonly nachrichtenUUID: string;
  readonly nachrichtentyp: CodeFields;
  /** xs:dateTime */
  readonly erstellungszeitpunkt: string;
  readonly leser: G2gParty;
  readonly autor: G2gParty;
}

/** An element tree for code: `<name listURI=… listVersionID=…><code>…</code><name>…</name></name>`. */
export function codeElement(qname: string, ns: string, value: CodeFields): XmlElement {
  const attributes: XmlAttribute[] = [];
  if (value.listURI !== undefined)
    attributes.push({ name: 'listURI', ns: '', local: 'listURI', value: value.listURI });
  if (value.listVersionID !== undefined) {
    attributes.push({ name: 'listVersionID', ns: '', local: 'listVersionID', value: value.listVersionID });
  }
  const children = [textElement('code', '', value.code)];
  if (value.name !== undefined) children.push(textElement('name', '', value.name));
  return element(qname, ns, children, attributes);
}

/** The g2g 1.1 header `nachrichtenkopf.g2g` as a tree (prefixes `g2g` and `beh` are the caller's). */
export function g2gHeaderElement(fields: G2gHeaderFields, prefixes = { g2g: 'g2g', beh: 'beh' }): XmlElement {
  const g = (local: string): string => `${prefixes.g2g}:${local}`;
  const b = (local: string): string => `${prefixes.beh}:${local}`;
  const party = (role: string, p: G2gParty): XmlElement =>
    element(g(role), G2G_NAMESPACE, [
      codeElement(b('verzeichnisdienst'), BEHOERDE_NAMESPACE, p.verzeichnisdienst),
      textElement(b('kennung'), BEHOERDE_NAMESPACE, p.kennung),
      textElement(b('name'), BEHOERDE_NAMESPACE, p.name),
    ]);
  return element(g('nachrichtenkopf.g2g'), G2G_NAMESPACE, [
    element(g('identifikation.nachricht'), G2G_NAMESPACE, [
      textElement(g('nachrichtenUUID'), G2G_NAMESPACE, fields.nachrichtenUUID),
      codeElement(g('nachrichtentyp'), G2G_NAMESPACE, fields.nachrichtentyp),
      textElement(g('erstellungszeitpunkt'), G2G_NAMESPACE, fields.erstellungszeitpunkt),
    ]),
    party('leser', fields.leser),
    party('autor', fields.autor),
  ]);
}

function element(name: string, ns: string, children: XmlNode[], attributes: XmlAttribute[] = []): XmlElement {
  const colon = name.indexOf(':');
  return {
    kind: 'element',
    name,
    ns,
    local: colon < 0 ? name : name.slice(colon + 1),
    attributes,
    declarations: {},
    children,
    line: 0,
  };
}

function textElement(name: string, ns: string, value: string): XmlElement {
  return element(name, ns, [{ kind: 'text', value }]);
}
