/** The `amtsbote` command line: run the gateway, check its configuration, operate it. */
import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { manifests } from '../adapters/index.js';
import { composeSchema } from './config/schema.js';
import { loadConfigFile, missingSecretsError, type MissingSecretsDetails } from './config/load.js';
import type { GatewayConfig } from './config/types.js';
import { AmtError, isAmtError } from './errors.js';
import { standaloneAdapterInstances, startGateway } from './gateway.js';
import { hashApiKey } from './http/auth.js';
import { registerAdminCommands } from './admin-cli.js';
import { routeMappingProblems } from './mapping/index.js';
import { registerMappingCommands } from './mapping/cli.js';
import { registerJobCommands } from './scheduler/cli.js';
import { registerStoreCommands } from './store/cli.js';
import { amtsboteVersion } from './version.js';

function configPath(option: string | undefined): string {
  const file = option ?? process.env.AMTSBOTE_CONFIG ?? 'gateway.yaml';
  if (!existsSync(file)) {
    throw new Error(`configuration file ${file} not found (use -c FILE or AMTSBOTE_CONFIG)`);
  }
  return file;
}

export function loadConfig(option: string | undefined): GatewayConfig {
  return loadConfigFile(configPath(option), { manifests });
}

function printError(err: unknown): void {
  if (isAmtError(err)) {
    console.error(`${err.code}: ${err.message}`);
    for (const p of err.problems) console.error(`  ${p.path}: ${p.message}`);
  } else {
    console.error(err instanceof Error ? err.message : String(err));
  }
}

export function buildProgram(): Command {
  const program = new Command('amtsbote')
    .description('Integration gateway for German municipal e-government (OZG)')
    .version(amtsboteVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('start')
    .description('run the gateway (intake API, delivery workers, admin API)')
    .option('-c, --config <file>', 'configuration file (default: $AMTSBOTE_CONFIG or ./gateway.yaml)')
    .addOption(
      new Option('-p, --port <port>', 'listen on this port instead of server.port').argParser((v) =>
        Number.parseInt(v, 10),
      ),
    )
    .action(async (opts: { config?: string; port?: number }) => {
      const config = loadConfig(opts.config);
      const gateway = await startGateway(config, {
        manifests,
        port: opts.port,
      });
      console.error(`amtsbote listening on ${gateway.url}`);
      let signals = 0;
      const shutdown = (signal: string): void => {
        signals += 1;
        if (signals > 1) process.exit(1);
        gateway.logger.info('signal received', { signal });
        gateway.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            gateway.logger.error('shutdown failed', { error: err });
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
    });

  program
    .command('check')
    .description(
      "validate the configuration and compile the routes' mappings; prints every problem with its path",
    )
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      let config: GatewayConfig;
      try {
        config = loadConfig(opts.config);
      } catch (err) {
        // Checked without the production secrets (in CI, say): the mappings are compiled anyway.
        const details = isAmtError(err) ? (err.details as MissingSecretsDetails | undefined) : undefined;
        if (!isAmtError(err) || err.code !== 'AMT_CONFIG_SECRET_MISSING' || details === undefined) throw err;
        throw missingSecretsError(err.problems, await routeMappingProblems(details.routes));
      }
      const problems = await routeMappingProblems(config.routes);
      if (problems.length > 0) {
        throw new AmtError('AMT_MAPPING_COMPILE_FAILED', "a route's mapping does not compile", { problems });
      }
      console.log(
        `configuration ok: ${config.tenants.length} tenant(s), ${config.clients.length} client(s), ` +
          `${Object.keys(config.adapters).length} adapter instance(s), ${config.routes.length} route(s), store ${config.store.type}`,
      );
    });

  program
    .command('config')
    .description('configuration tools')
    .command('schema')
    .description('print the JSON Schema of gateway.yaml (core and every installed adapter)')
    .action(() => {
      console.log(JSON.stringify(composeSchema(manifests), null, 2));
    });

  program
    .command('adapters')
    .description('installed adapters')
    .command('list')
    .description('list the installed adapter manifests')
    .option('--json', 'print the manifests as JSON')
    .action((opts: { json?: boolean }) => {
      if (opts.json) {
        const data = manifests.map(
          ({ type, version, description, capabilities, configSchema, secrets, example }) => ({
            type,
            version,
            description,
            capabilities,
            configSchema,
            secrets,
            example,
          }),
        );
        console.log(JSON.stringify(data, null, 2));
        return;
      }
      for (const m of manifests) {
        const caps = Object.entries(m.capabilities)
          .filter(([, on]) => on)
          .map(([name]) => name)
          .join(',');
        console.log(`${m.type.padEnd(14)} ${m.version.padEnd(8)} ${caps.padEnd(30)} ${m.description}`);
      }
    });

  program
    .command('hash-key')
    .description('print the keyHash for an API key (generates a new random key when none is given)')
    .argument('[key]', 'the API key')
    .action((key: string | undefined) => {
      const apiKey = key ?? randomBytes(32).toString('base64url');
      if (!key) console.log(`key:     ${apiKey}`);
      console.log(`keyHash: ${hashApiKey(apiKey)}`);
    });

  registerAdminCommands(program);
  registerMappingCommands(program);
  registerJobCommands(program, {
    loadConfig,
    createAdapters: async (config, store) => standaloneAdapterInstances(config, manifests, store),
  });
  registerStoreCommands(program, loadConfig);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    printError(err);
    return 1;
  }
}
