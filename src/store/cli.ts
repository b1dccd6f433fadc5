/**
 * Store commands of the `amtsbote` command line: `migrate` (bring the configured store's schema
 * up to date) and `store copy` (move an installation from SQLite to PostgreSQL).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { GatewayConfig, StoreConfig } from '../config/types.js';
import {
  copySqliteToPostgres,
  latestSchemaVersion,
  redactUrl,
  StoreCopyError,
  storeSchemaVersion,
  type CopySummary,
} from './copy.js';
import { openStore } from './open.js';

export function registerStoreCommands(program: Command, loadConfig: (file?: string) => GatewayConfig): void {
  program
    .command('migrate')
    .description("create or upgrade the configured store's schema and print its version")
    .option('-c, --config <file>', 'configuration file (default: $AMTSBOTE_CONFIG or ./gateway.yaml)')
    .action(async (opts: { config?: string }) => {
      const { store: storeConfig } = loadConfig(opts.config);
      const before = await storeSchemaVersion(storeConfig);
      const { store } = await openStore(storeConfig);
      await store.close();
      const after = await storeSchemaVersion(storeConfig);
      const latest = latestSchemaVersion(storeConfig.type);
      const change = before === after ? 'up to date' : `migrated from version ${before}`;
      console.log(`store ${describeStore(storeConfig)}: schema version ${after} (${change})`);
      if (after > latest) {
        console.error(
          `warning: the schema is newer than this amtsbote knows (${latest}); is an older amtsbote running?`,
        );
      }
    });

  const store = program.command('store').description('store maintenance');
  store
    .command('copy')
    .description(
      'copy everything from the embedded SQLite store into an empty PostgreSQL database, then compare ' +
        'counts and checksums table by table (stop the gateway first)',
    )
    .requiredOption(
      '--from <sqlite:PATH>',
      'the SQLite store file, e.g. sqlite:data/amtsbote.db',
      parseSqlite,
    )
    .option(
      '--to <postgres:URL>',
      'the PostgreSQL database, e.g. postgres:postgres://amtsbote@db/amtsbote (default: the store of -c FILE)',
      parsePostgres,
    )
    .option(
      '-c, --config <file>',
      'take the target from this configuration (keeps the password off the command line)',
    )
    .option('--batch <n>', 'rows per batch and transaction', parsePositive, 500)
    .option(
      '--attachments <dir>',
      'attachment directory of the source (default: attachments/ next to the file)',
    )
    .action(
      async (opts: { from: string; to?: string; config?: string; batch: number; attachments?: string }) => {
        const to = opts.to ?? targetFromConfig(loadConfig, opts.config);
        const progress = process.stderr.isTTY
          ? (table: string, copied: number, total: number) =>
              process.stderr.write(
                `\r  ${table}: ${copied.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}   `,
              )
          : undefined;
        let summary: CopySummary;
        try {
          summary = await copySqliteToPostgres(opts.from, to, {
            batchSize: opts.batch,
            attachmentsDir: opts.attachments,
            onProgress: progress,
          });
        } catch (err) {
          if (progress) process.stderr.write('\n');
          if (err instanceof StoreCopyError && err.summary) printSummary(err.summary);
          throw err;
        }
        if (progress) process.stderr.write('\n');
        printSummary(summary);
      },
    );
}

function describeStore(config: StoreConfig): string {
  return config.type === 'sqlite' ? `sqlite ${config.path}` : `postgres ${redactUrl(config.url)}`;
}

function parseSqlite(value: string): string {
  if (!value.startsWith('sqlite:') || value.length === 'sqlite:'.length) {
    throw new InvalidArgumentError('expected sqlite:PATH');
  }
  return value.slice('sqlite:'.length);
}

/** `postgres:URL`; a bare postgres:// or postgresql:// URL is taken as it is. */
function parsePostgres(value: string): string {
  if (/^postgres(ql)?:\/\//.test(value)) return value;
  const url = value.startsWith('postgres:') ? value.slice('postgres:'.length) : '';
  if (!/^postgres(ql)?:\/\//.test(url)) throw new InvalidArgumentError('expected postgres:postgres://…');
  return url;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

function targetFromConfig(loadConfig: (file?: string) => GatewayConfig, file: string | undefined): string {
  if (file === undefined)
    throw new Error('store copy needs --to postgres:URL or -c FILE with a postgres store');
  const { store } = loadConfig(file);
  if (store.type !== 'postgres') throw new Error(`the store of ${file} is ${store.type}, not postgres`);
  return store.url;
}

function printSummary(summary: CopySummary): void {
  const n = (v: number): string => v.toLocaleString('en-US');
  console.log(`store copy: ${summary.source} (schema ${summary.sourceSchemaVersion})`);
  console.log(`        to: ${summary.target} (schema ${summary.targetSchemaVersion})`);
  for (const warning of summary.warnings) console.error(`warning: ${warning}`);
  console.log('');
  console.log(
    `  ${'table'.padEnd(22)} ${'source rows'.padStart(12)} ${'target rows'.padStart(12)}  checksum`,
  );
  for (const t of summary.tables) {
    const added = t.addedRows > 0 ? ` (+${n(t.addedRows)} added)` : '';
    const check = t.matches
      ? `ok ${t.targetChecksum.slice(0, 16)}`
      : `DIFFERENT (expected ${t.expectedChecksum.slice(0, 16)}, found ${t.targetChecksum.slice(0, 16)})`;
    console.log(
      `  ${t.table.padEnd(22)} ${n(t.sourceRows).padStart(12)} ${n(t.targetRows).padStart(12)}  ${check}${added}`,
    );
  }
  console.log('');
  if (summary.releasedLeases > 0) {
    console.log(
      `${n(summary.releasedLeases)} message(s) in delivery were copied as retrying, lease cleared ` +
        '(history event "released"); they are delivered again under their delivery id',
    );
  }
  for (const note of summary.notes) console.log(`note: ${note}`);
  const messages = summary.tables.find((t) => t.table === 'messages')?.sourceRows ?? 0;
  const verdict = summary.tables.every((t) => t.matches)
    ? 'counts and checksums match'
    : 'COUNTS OR CHECKSUMS DIFFER';
  console.log(`copied ${n(messages)} message(s) in ${summary.seconds.toFixed(1)} s; ${verdict}`);
}
