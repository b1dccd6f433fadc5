/**
 * The real XTA 2 / OSCI schemas (the adapter's copy of `XTA.wsdl`'s XSDs), compiled once with
 * libxml2-wasm, for checking what the adapter sends and what the emulator answers.
 */
import { XmlDocument, XsdValidator, type XmlElement } from 'libxml2-wasm';
import { xmlRegisterFsInputProviders } from 'libxml2-wasm/lib/nodejs.mjs';
import { fileURLToPath } from 'node:url';

export const XTA_SCHEMA_DIR = fileURLToPath(new URL('../../../adapters/xta2/wsdl/', import.meta.url));

let validator: XsdValidator | undefined;

function schema(): XsdValidator {
  if (validator) return validator;
  xmlRegisterFsInputProviders();
  // One schema document that pulls in everything an XTA message may contain.
  const wrapper =
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:amtsbote:test:xta-schemas">' +
    `<xs:import namespace="http://xoev.de/transport/xta/211" schemaLocation="${XTA_SCHEMA_DIR}XTA-Webservice-Globale-Elemente.xsd"/>` +
    `<xs:import namespace="http://xoev.de/transport/xta/211" schemaLocation="${XTA_SCHEMA_DIR}XTA-Webservice-Exceptions.xsd"/>` +
    `<xs:import namespace="http://www.osci.eu/ws/2008/05/transport" schemaLocation="${XTA_SCHEMA_DIR}OSCI2_02.xsd"/>` +
    '</xs:schema>';
  // The schema document stays alive as long as the validator: it is compiled once per process.
  const doc = XmlDocument.fromString(wrapper, { url: `${XTA_SCHEMA_DIR}amtsbote-test-wrapper.xsd` });
  validator = XsdValidator.fromDoc(doc);
  return validator;
}

/** Problems of one element against the XTA schemas; empty when it is valid. */
export function xsdProblems(element: XmlElement): string[] {
  try {
    schema().validate(element);
    return [];
  } catch (err) {
    const details = (err as { details?: { message: string }[] }).details;
    return details?.map((d) => d.message.trim()) ?? [(err as Error).message];
  }
}

/** Validates a standalone XML string (one element) against the XTA schemas. */
export function xsdProblemsOf(xml: string): string[] {
  const doc = XmlDocument.fromString(xml);
  try {
    return xsdProblems(doc.root);
  } finally {
    doc.dispose();
  }
}
