/**
 * Mapping throughput on one core: the Bewohnerparkausweis application → xdomea 0604
 * (map + build XML + XSD validation), as the shipped compiled mapping and as the same mapping
 * written in pure JSONata (+ the same XML building and validation), in one run.
 *
 *   npm run bench:mapping [-- --runs 5 --seconds 1.5]
 *
 * Both variants produce the same XML (checked before measuring, canonical comparison). The
 * JSONata variant gets the few things JSONata cannot do itself (name-based UUIDs, the Berlin
 * calendar day, the clock) as bound functions, and builds its XML with fast-xml-parser's
 * XMLBuilder from the JSON it returns. Figures are the median of the runs; variants alternate
 * within each run so a busy machine hurts them alike.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { XMLBuilder } from 'fast-xml-parser';
import jsonata from 'jsonata';
import { loadMapping } from '../src/mapping/index.js';
import type { MappingResult } from '../src/mapping/index.js';
import { buildXml, newRunContext } from '../src/mapping/execute.js';
import { loadMappingTestSuite } from '../src/mapping/testing.js';
import { nameBasedUuid } from '../src/mapping/uuid.js';
import { toBerlinDate } from '../src/mapping/transforms.js';
import { amtsboteVersion } from '../src/version.js';
import { canonicalForm } from '../src/xml/canonical.js';
import { readXml } from '../src/xml/read.js';
import { validateXml } from '../src/xml/validate.js';
import { writeXml, writeXmlWithBuilder } from '../src/xml/write.js';
import type { MappingInput } from '../src/pipeline/mapping-step.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, seconds: { type: 'string', default: '1.5' } },
});
const RUNS = Number(values.runs);
const SECONDS = Number(values.seconds);
const SCHEMA_SET = 'xdomea-3.0.0';
const NOW = new Date('2024-05-02T08:15:03Z');

// The same mapping in JSONata, producing fast-xml-parser's JSON form of the XML.
const JSONATA_MAPPING = `(
  $msg := message; $app := application; $a := $app.applicant; $d := $app.data; $v := $app.verifiedIdentity;
  $family := $v.familyName ? $v.familyName : $trim($a.familyName);
  $given := $v.givenName ? $v.givenName : $trim($a.givenName);
  $code := function($uri, $version, $c) { {"@_listURI": $uri, "@_listVersionID": $version, "code": $c} };
  $isoDate := function($de) { ( $p := $split($de, "."); $p[2] & "-" & $pad($p[1], -2, "0") & "-" & $pad($p[0], -2, "0") ) };
  $feld := function($name, $value) { $value ? {"xdomea:Name": $name, "xdomea:Wert": $value} };
  $plate := $uppercase($replace($trim($d.vehicle.licensePlate), /\\s+/, " "));
  $formats := {"application/pdf": "018", "image/jpeg": "011", "image/png": "019", "image/tiff": "024"};
  $kinds := {"PKW": "Personenkraftwagen", "KRAD": "Kraftrad", "LKW": "Lastkraftwagen bis 3,5 t", "WOMO": "Wohnmobil"};
  $holders := {"self": "Antragsteller/in", "employer": "Arbeitgeber (Dienstwagen)", "other": "Dritte Person (Nutzungsnachweis beigefügt)"};
  {
    "xdomea:FVDaten.SGOErstellen.0604": {
      "@_xmlns:xdomea": "urn:xoev-de:xdomea:schema:3.0.0",
      "xdomea:Kopf": {
        "xdomea:ProzessID": $uuid("prozess:" & $msg.deliveryId),
        "xdomea:Nachrichtentyp": $code("urn:xoev-de:xdomea:codeliste:nachrichtentyp", "2.0", "0604"),
        "xdomea:Erstellungszeitpunkt": $nowXs(),
        "xdomea:Absender": {"xdomea:Institution": {"xdomea:Name": "Onlineportal", "xdomea:Kurzbezeichnung": $msg.tenant.name}},
        "xdomea:Empfaenger": {
          "xdomea:Institution": {"xdomea:Name": $msg.tenant.name},
          "xdomea:Organisationseinheit": {"xdomea:Name": "Straßenverkehrsbehörde – Bewohnerparken"}
        },
        "xdomea:SendendesSystem": {"xdomea:InstanzID": $msg.tenant.id, "xdomea:Produktname": "amtsbote", "xdomea:Version": $version},
        "xdomea:Empfangsbestaetigung": "true",
        "xdomea:Importbestaetigung": "1",
        "xdomea:Erstellerkennung": "onlineportal",
        "xdomea:Stapel": "false"
      },
      "xdomea:SchriftgutobjektZumErstellen": {
        "xdomea:FachverfahrenObjektID": $msg.id,
        "xdomea:Schriftgutobjekt": {"xdomea:Vorgang": {
          "xdomea:Identifikation": {"xdomea:ID": $uuid("vorgang:" & $msg.deliveryId)},
          "xdomea:AllgemeineMetadaten": {
            "xdomea:Betreff": "Bewohnerparkausweis " & $plate & " – " & $family & ", " & $given,
            "xdomea:Kennzeichen": $app.reference,
            "xdomea:Vertraulichkeitsstufe": $code("urn:xoev-de:xdomea:codeliste:vertraulichkeitsstufe", "1.0", "003"),
            "xdomea:Medium": $code("urn:xoev-de:xdomea:codeliste:medium", "1.0", "001")
          },
          "xdomea:Dokument": {
            "xdomea:Identifikation": {"xdomea:ID": $uuid("antrag:" & $msg.deliveryId)},
            "xdomea:AllgemeineMetadaten": {"xdomea:Betreff": "Antrag auf Ausstellung eines Bewohnerparkausweises"},
            "xdomea:Posteingangsdatum": $berlinDate($msg.receivedAt),
            "xdomea:Typ": "Antrag",
            "xdomea:Anlage": [$map(attachments, function($f) { {
              "xdomea:Identifikation": {"xdomea:ID": $uuid("anlage:" & $msg.deliveryId & ":" & $f.sha256)},
              "xdomea:AllgemeineMetadaten": {"xdomea:Betreff": $f.purpose ? $f.purpose : "Nachweis"},
              "xdomea:Typ": "Nachweis",
              "xdomea:Version": {
                "xdomea:Nummer": "1",
                "xdomea:Format": {
                  "xdomea:Name": $code("urn:xoev-de:xdomea:codeliste:dateiformat", "1.0", $lookup($formats, $f.mediaType)),
                  "xdomea:Version": $f.mediaType = "application/pdf" ? "1.4" : "unbekannt",
                  "xdomea:Primaerdokument": {
                    "xdomea:Dateiname": $uuid("datei:" & $f.sha256) & "_" & $f.filename,
                    "xdomea:DateinameOriginal": $f.filename
                  }
                }
              }
            } })],
            "xdomea:Absender": {
              "xdomea:Name": {
                "xdomea:Anrede": $a.salutation,
                "xdomea:Titel": $a.title,
                "xdomea:Familienname": {"xdomea:Name": $family},
                "xdomea:Vorname": {"xdomea:Name": $given}
              },
              "xdomea:Anschrift": {
                "xdomea:Staat": {"xdomea:Staat": {
                  "@_listURI": "urn:xoev-de:kosit:codeliste:country-codes", "@_listVersionID": "7",
                  "code": $uppercase($a.address.country ? $a.address.country : "DE"), "name": "Deutschland"
                }},
                "xdomea:Strasse": $a.address.street,
                "xdomea:Hausnummer": $a.address.houseNumber,
                "xdomea:Postleitzahl": $a.address.postalCode,
                "xdomea:Ort": $a.address.city
              },
              "xdomea:Kommunikation": [
                $a.email ? {"xdomea:Kanal": $code("urn:de:xoev:codeliste:erreichbarkeit", "3", "01"), "xdomea:Kennung": $lowercase($trim($a.email))},
                $a.phone ? {"xdomea:Kanal": $code("urn:de:xoev:codeliste:erreichbarkeit", "3", "02"), "xdomea:Kennung": $a.phone}
              ],
              "xdomea:Geburt": {"xdomea:Datum": $contains($v.birthDate, /^\\d{4}-\\d{2}-\\d{2}$/) ? $v.birthDate : $isoDate($a.birthDate)}
            },
            "xdomea:AnwendungsspezifischeErweiterung": {
              "xdomea:Kennung": "urn:amtsbote:bewohnerparken:1",
              "xdomea:Name": "Bewohnerparkausweis",
              "xdomea:Feldgruppe": [
                {"xdomea:Name": "Fahrzeug", "xdomea:Beschreibung": "Angaben zum Fahrzeug", "xdomea:Feld": [
                  $feld("Kennzeichen", $plate),
                  $feld("Fahrzeugart", $lookup($kinds, $d.vehicle.kind)),
                  $feld("Halter", $lookup($holders, $d.vehicle.holder))
                ]},
                {"xdomea:Name": "Parkberechtigung", "xdomea:Beschreibung": "Beantragte Bewohnerparkberechtigung", "xdomea:Feld": [
                  $feld("Bewohnerparkzone", $d.zone.code & " " & $d.zone.name),
                  $feld("Gültig ab", $isoDate($d.validFrom)),
                  $feld("Laufzeit in Monaten", $d.durationMonths ? $d.durationMonths : "12"),
                  $feld("Hauptwohnsitz seit", $isoDate($d.mainResidenceSince))
                ]}
              ]
            }
          }
        }}
      }
    }
  }
)`;

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: true,
});

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 0 ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[mid]!;
}

interface Rate {
  /** Operations per wall-clock second. */
  readonly wall: number;
  /** Operations per second of this process's CPU time — the per-core figure on a shared machine. */
  readonly cpu: number;
}

/** Runs `once` for about `seconds`. */
async function rate(once: () => unknown, seconds: number): Promise<Rate> {
  const end = performance.now() + seconds * 1000;
  let count = 0;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) {
      const result = once();
      if (result instanceof Promise) await result;
    }
    count += 50;
  }
  const cpu = process.cpuUsage(cpuStart);
  return {
    wall: count / ((performance.now() - started) / 1000),
    cpu: count / ((cpu.user + cpu.system) / 1e6),
  };
}

function validOrThrow(xml: string, label: string): void {
  const result = validateXml(xml, SCHEMA_SET);
  if (!result.valid) throw new Error(`${label}: invalid XML: ${result.errors[0]?.message}`);
}

async function main(): Promise<void> {
  const suite = loadMappingTestSuite(path.join(ROOT, 'mappings/bewohnerparken/bewohnerparken.test.yaml'));
  const input: MappingInput = suite.cases[0]!.input;
  const compiled = await loadMapping(suite.mappingFile);
  const runOptions = { now: () => NOW };
  const expression = jsonata(JSONATA_MAPPING);
  const bindings = {
    uuid: (name: string) => nameBasedUuid(name),
    berlinDate: (ms: number) => toBerlinDate(ms),
    nowXs: () => NOW.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    version: amtsboteVersion(),
  };

  const engine = (): string => {
    const result = compiled.map(input, runOptions) as MappingResult;
    validOrThrow(result.content, 'engine');
    return result.content;
  };
  const engineWithBuilder = (): string => {
    const result = compiled.map(input, runOptions) as MappingResult;
    const xml = writeXmlWithBuilder(result.xml!);
    validOrThrow(xml, 'engine + XMLBuilder');
    return xml;
  };
  const pureJsonata = async (): Promise<string> => {
    const json = (await expression.evaluate(input, bindings)) as unknown;
    const xml = `<?xml version="1.0" encoding="UTF-8"?>${builder.build(json) as string}`;
    validOrThrow(xml, 'JSONata');
    return xml;
  };

  // The variants must agree before their speed means anything.
  const reference = canonicalForm(readXml(engine()));
  for (const [label, xml] of [
    ['engine + XMLBuilder', engineWithBuilder()],
    ['JSONata', await pureJsonata()],
  ] as const) {
    if (canonicalForm(readXml(xml)) !== reference) throw new Error(`${label} produces different XML`);
  }

  const tree = (compiled.map(input, runOptions) as MappingResult).xml!;
  const xml = writeXml(tree);
  const parts = {
    'map: compiled rules → tree': () =>
      buildXml(
        compiled.definition.root,
        { root: input, input, item: input, index: 0, trail: '', run: newRunContext(runOptions, false) },
        {},
      ),
    'write XML (direct)': () => writeXml(tree),
    'write XML (fast-xml-parser XMLBuilder)': () => writeXmlWithBuilder(tree),
    'validate (libxml2-wasm, cached schema)': () => validateXml(xml, SCHEMA_SET),
    'JSONata evaluate': () => expression.evaluate(input, bindings),
  };
  const variants = {
    'compiled mapping + direct writer + validate': engine,
    'compiled mapping + XMLBuilder + validate': engineWithBuilder,
    'pure JSONata + XMLBuilder + validate': pureJsonata,
  };

  // warm-up
  for (const once of [...Object.values(variants), ...Object.values(parts)]) await rate(once, 0.3);

  const variantRates = new Map<string, Rate[]>();
  const partRates = new Map<string, Rate[]>();
  const load = os.loadavg()[0]!;
  for (let run = 0; run < RUNS; run++) {
    for (const [label, once] of Object.entries(variants)) {
      variantRates.set(label, [...(variantRates.get(label) ?? []), await rate(once, SECONDS)]);
    }
    for (const [label, once] of Object.entries(parts)) {
      partRates.set(label, [...(partRates.get(label) ?? []), await rate(once, SECONDS / 3)]);
    }
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`mapping benchmark — ${cpu}, ${os.cpus().length} cores, Node ${process.version}`);
  console.log(`load average at start: ${load.toFixed(2)}; one thread; median of ${RUNS} runs × ${SECONDS} s`);
  console.log(`message: ${xml.length} bytes of xdomea 0604 XML\n`);
  console.log(`${''.padEnd(48)} ${'wall clock'.padStart(12)} ${'per CPU-second'.padStart(16)}`);
  const results = new Map<string, Rate>();
  for (const [label, rates] of variantRates) {
    const result = { wall: median(rates.map((r) => r.wall)), cpu: median(rates.map((r) => r.cpu)) };
    results.set(label, result);
    console.log(
      `${label.padEnd(48)} ${`${Math.round(result.wall)}/s`.padStart(12)} ${`${Math.round(result.cpu)}/s`.padStart(16)}`,
    );
  }
  const ours = results.get('compiled mapping + direct writer + validate')!;
  const theirs = results.get('pure JSONata + XMLBuilder + validate')!;
  console.log(
    `\nratio compiled / pure JSONata: ${(ours.wall / theirs.wall).toFixed(2)}× (wall), ${(ours.cpu / theirs.cpu).toFixed(2)}× (CPU)`,
  );
  console.log(
    `target ≥ 5000 messages/s per core: ${ours.cpu >= 5000 ? 'met' : 'NOT met'} (${Math.round(ours.cpu)}/s per CPU-second)\n`,
  );
  console.log('where the time goes (median µs per message, CPU time):');
  for (const [label, rates] of partRates) {
    console.log(`  ${label.padEnd(44)} ${(1e6 / median(rates.map((r) => r.cpu))).toFixed(0).padStart(6)} µs`);
  }
}

await main();
