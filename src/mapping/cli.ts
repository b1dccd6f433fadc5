/**
 * Command-line tools for integrators: validate XML against the shipped XSDs, run and test
 * mappings, and list what a mapping leaves out of its target schema.
 *
 *   amtsbote validate FILE.xml [--schema SET]
 *   amtsbote mapping test [PATHS...]
 *   amtsbote mapping run MAPPING INPUT
 *   amtsbote mapping coverage MAPPING
 *
 * Output goes through commander's output configuration; a failure ends with `command.error`
 * (exit code 1), so tests can capture both with `configureOutput` and `exitOverride`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { isAmtError } from '../errors.js';
import type { MappingInput } from '../pipeline/mapping-step.js';
import { validateXml } from '../xml/validate.js';
import { writeXml } from '../xml/write.js';
import { CoverageUnavailableError, mappingCoverage } from './coverage.js';
import { loadMapping } from './index.js';
import { describeError, discoverMappingTests, loadMappingTestSuite, runMappingTestCase } from './testing.js';

export function registerMappingCommands(program: Command): void {
  program
    .command('validate')
    .description(
      'validate an XML file against a schema set (picked by the root namespace unless --schema is given)',
    )
    .argument('<file>', 'the XML file')
    .option('-s, --schema <set>', 'schema set from schemas/catalog.yaml, e.g. xdomea-3.0.0')
    .action((file: string, options: { schema?: string }, command: Command) => {
      const out = writer(command);
      let content: Buffer;
      try {
        content = readFileSync(file);
      } catch (err) {
        command.error(`cannot read ${file}: ${(err as Error).message}`, {
          exitCode: 1,
          code: 'amtsbote.unreadable',
        });
      }
      try {
        const result = validateXml(content, options.schema, { source: file });
        if (result.valid) {
          out(`${file}: valid against ${result.schemaSet}\n`);
          return;
        }
        for (const error of result.errors) {
          const at = `${file}:${error.line}${error.column === undefined ? '' : `:${error.column}`}`;
          out(`${at}: ${error.message}${error.path === undefined ? '' : `\n    at ${error.path}`}\n`);
        }
        command.error(`${file}: ${result.errors.length} error(s) against ${result.schemaSet}`, {
          exitCode: 1,
          code: 'amtsbote.invalid',
        });
      } catch (err) {
        if (!isAmtError(err)) throw err;
        command.error(`${file}: ${describeError(err)}`, { exitCode: 1, code: 'amtsbote.refused' });
      }
    });

  const mapping = program.command('mapping').description('run, test and inspect mapping files');

  mapping
    .command('test')
    .description('run the NAME.test.yaml cases below the given files or folders (default: mappings/)')
    .argument('[paths...]', 'test files or folders')
    .action(async (paths: string[], _options: unknown, command: Command) => {
      const out = writer(command);
      const files = discoverMappingTests(paths.length > 0 ? paths : ['mappings']);
      if (files.length === 0)
        command.error('no *.test.yaml files found', { exitCode: 1, code: 'amtsbote.no-tests' });
      let passed = 0;
      let failed = 0;
      for (const file of files) {
        const relative = path.relative(process.cwd(), file);
        let suite;
        try {
          suite = loadMappingTestSuite(file);
        } catch (err) {
          failed++;
          out(`✘ ${relative}: ${(err as Error).message}\n`);
          continue;
        }
        for (const testCase of suite.cases) {
          const result = await runMappingTestCase(suite, testCase);
          if (result.passed) {
            passed++;
            out(`✔ ${relative} › ${testCase.name}\n`);
          } else {
            failed++;
            out(`✘ ${relative}:${testCase.line} › ${testCase.name}\n`);
            for (const failure of result.failures) out(`${indent(failure, '    ')}\n`);
          }
        }
      }
      out(`\n${passed} passed, ${failed} failed\n`);
      if (failed > 0)
        command.error(`${failed} mapping test case(s) failed`, {
          exitCode: 1,
          code: 'amtsbote.tests-failed',
        });
    });

  mapping
    .command('run')
    .description('map one input and print the result (validated when the mapping names a schema set)')
    .argument('<mapping>', 'the mapping file')
    .argument(
      '<input>',
      'a MappingInput JSON {application, message, attachments}, an application JSON, or an XML message',
    )
    .option('--no-validate', 'print the result without validating it')
    .option('--pretty', 'indent XML output')
    .action(
      async (
        mappingFile: string,
        inputFile: string,
        options: { validate: boolean; pretty?: boolean },
        command: Command,
      ) => {
        const out = writer(command);
        try {
          const compiled = await loadMapping(mappingFile);
          const result = await compiled.map(readInput(inputFile));
          if (result.json !== undefined) out(`${JSON.stringify(result.json, null, 2)}\n`);
          else
            out(
              `${options.pretty === true && result.xml ? writeXml(result.xml, { indent: true }) : result.content}\n`,
            );
          const validation = options.validate ? compiled.validate(result) : undefined;
          if (validation !== undefined && !validation.valid) {
            for (const error of validation.errors)
              out(`line ${error.line}: ${error.message}${error.path ? ` (${error.path})` : ''}\n`);
            command.error(`the result is not valid against ${validation.schemaSet}`, {
              exitCode: 1,
              code: 'amtsbote.invalid',
            });
          }
        } catch (err) {
          if (!isAmtError(err)) throw err;
          command.error(describeError(err), { exitCode: 1, code: 'amtsbote.mapping-failed' });
        }
      },
    );

  mapping
    .command('coverage')
    .description('list required elements of the target schema that the mapping never fills')
    .argument('<mapping>', 'the mapping file')
    .action(async (mappingFile: string, _options: unknown, command: Command) => {
      const out = writer(command);
      try {
        const compiled = await loadMapping(mappingFile);
        const report = mappingCoverage(compiled.definition);
        if (report.gaps.length === 0) {
          out(`${mappingFile}: fills every required element of ${report.root} (${report.schemaSet})\n`);
          return;
        }
        out(`${mappingFile}: required by ${report.schemaSet} but never filled:\n`);
        for (const gap of report.gaps) {
          const where = gap.line > 0 ? ` (below the rule at line ${gap.line})` : '';
          out(`  ${gap.kind === 'choice' ? 'one of ' : ''}${gap.path}${where}\n`);
        }
        command.error(`${report.gaps.length} required part(s) not filled`, {
          exitCode: 1,
          code: 'amtsbote.coverage-gaps',
        });
      } catch (err) {
        if (err instanceof CoverageUnavailableError)
          command.error(err.message, { exitCode: 1, code: 'amtsbote.no-coverage' });
        if (!isAmtError(err)) throw err;
        command.error(describeError(err), { exitCode: 1, code: 'amtsbote.mapping-failed' });
      }
    });
}

function writer(command: Command): (text: string) => void {
  const output = command.configureOutput();
  return (text) => (output.writeOut ?? ((s: string) => process.stdout.write(s)))(text);
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

/** The input of `mapping run`: a whole MappingInput, a bare application, or an XML message. */
function readInput(file: string): MappingInput {
  const text = readFileSync(file, 'utf8');
  const meta = {
    id: randomUUID(),
    deliveryId: randomUUID(),
    tenant: { id: 'cli', name: 'CLI', ars: '000000000000' },
    service: '',
    reference: undefined,
    receivedAt: Date.now(),
  };
  if (!file.endsWith('.json')) return { application: text, message: meta, attachments: [] };
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if ('application' in parsed && 'message' in parsed) {
    const message = { ...meta, ...(parsed['message'] as object) } as MappingInput['message'];
    const attachments = Array.isArray(parsed['attachments'])
      ? (parsed['attachments'] as MappingInput['attachments'])
      : [];
    return { application: parsed['application'], message, attachments };
  }
  const tenant =
    typeof parsed['tenant'] === 'string' ? { ...meta.tenant, ars: parsed['tenant'] } : meta.tenant;
  const reference = typeof parsed['reference'] === 'string' ? parsed['reference'] : undefined;
  const service = typeof parsed['service'] === 'string' ? parsed['service'] : '';
  return {
    application: parsed,
    message: { ...meta, tenant, reference, service },
    attachments: inlineAttachments(parsed),
  };
}

/** A portal request with inline attachments: the references the store would keep for them. */
function inlineAttachments(application: Record<string, unknown>): MappingInput['attachments'] {
  const list = application['attachments'];
  if (!Array.isArray(list)) return [];
  return list.flatMap((item: Record<string, unknown>) => {
    if (typeof item['contentBase64'] !== 'string' || typeof item['filename'] !== 'string') return [];
    const content = Buffer.from(item['contentBase64'], 'base64');
    return [
      {
        sha256: createHash('sha256').update(content).digest('hex'),
        size: content.length,
        filename: item['filename'],
        mediaType: typeof item['mediaType'] === 'string' ? item['mediaType'] : 'application/octet-stream',
        purpose: typeof item['purpose'] === 'string' ? item['purpose'] : undefined,
      },
    ];
  });
}
