/** XML for the gateway: guarded namespace-aware reading, writing, canonical comparison, XSD validation. */
export { DEFAULT_XML_LIMITS, decodeXml } from './guard.js';
export type { XmlLimits } from './guard.js';
export { readXml } from './read.js';
export type { ReadXmlOptions } from './read.js';
export { writeXml } from './write.js';
export type { WriteXmlOptions } from './write.js';
export { canonicalForm } from './canonical.js';
export { collectXml } from './collect.js';
export { DOCUMENT_PARSE_OPTIONS, preloadSchemaSet, validateXml } from './validate.js';
export type { ValidateXmlOptions, XsdValidationError, XsdValidationResult } from './validate.js';
export { loadSchemaCatalog, schemaRoot, schemaSet, schemaSetForNamespace } from './schema-catalog.js';
export type { SchemaCatalog, SchemaSet } from './schema-catalog.js';
export {
  attributeOf,
  childElements,
  clarkName,
  findChild,
  findChildren,
  localOf,
  prefixOf,
  textOf,
} from './tree.js';
export type { XmlAttribute, XmlElement, XmlNode, XmlText } from './tree.js';
