/**
 * Operator commands that talk to a running gateway's admin API with an admin key
 * (`--key` or AMTSBOTE_ADMIN_KEY), so they work the same for SQLite and PostgreSQL installations.
 */
import type { Command } from 'commander';

interface AdminOptions {
  url?: string;
  key?: string;
  json?: boolean;
}

async function adminRequest(
  opts: AdminOptions,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const base = opts.url ?? process.env.AMTSBOTE_URL ?? 'http://127.0.0.1:8080';
  const key = opts.key ?? process.env.AMTSBOTE_ADMIN_KEY;
  if (!key) throw new Error('an admin key is needed: --key KEY or AMTSBOTE_ADMIN_KEY');
  let url: URL;
  try {
    url = new URL(path, base);
  } catch {
    throw new Error(`the gateway URL ${base} is not a URL (--url or AMTSBOTE_URL)`);
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(
      `cannot reach the gateway at ${base}: ${cause?.code ?? cause?.message ?? String(err)} — is it running? (--url or AMTSBOTE_URL)`,
    );
  }
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    throw new Error(
      `${base} answered ${response.status} with something other than JSON — is it the gateway?`,
    );
  }
  if (!response.ok) {
    const problem = data as { code?: string; title?: string; detail?: string } | undefined;
    throw new Error(
      `${response.status} ${problem?.code ?? ''} ${problem?.detail ?? problem?.title ?? text}`.trim(),
    );
  }
  return data;
}

function withConnection(command: Command): Command {
  return command
    .option('--url <url>', 'gateway base URL (default $AMTSBOTE_URL or http://127.0.0.1:8080)')
    .option('--key <key>', 'admin API key (default $AMTSBOTE_ADMIN_KEY)')
    .option('--json', 'print JSON');
}

interface MessageRow {
  id: string;
  status: string;
  tenantId: string;
  service: string;
  reference?: string;
  createdAt: string;
  target: string;
  attempts: number;
  lastError?: { code: string; message: string };
}

function printRows(rows: readonly MessageRow[]): void {
  for (const m of rows) {
    const error = m.lastError ? ` ${m.lastError.code}` : '';
    console.log(
      `${m.id}  ${m.status.padEnd(10)} ${m.createdAt}  ${m.tenantId} ${m.service} ${m.target} attempts=${m.attempts}${error}`,
    );
  }
}

export function registerAdminCommands(program: Command): void {
  const messages = program.command('messages').description('inspect messages (admin API)');
  withConnection(messages.command('list').description('list messages, newest first'))
    .option('--tenant <id>')
    .option('--service <key>')
    .option('--status <status>', 'received, delivering, retrying, delivered or dead')
    .option('--reference <ref>')
    .option('--since <iso>')
    .option('--until <iso>')
    .option('--limit <n>', 'page size', '50')
    .action(async (opts: AdminOptions & Record<string, string | undefined>) => {
      const query = new URLSearchParams();
      for (const name of ['tenant', 'service', 'status', 'reference', 'since', 'until', 'limit']) {
        const value = opts[name];
        if (typeof value === 'string') query.set(name, value);
      }
      const page = (await adminRequest(opts, 'GET', `/api/v1/admin/messages?${query}`)) as {
        items: MessageRow[];
      };
      if (opts.json) console.log(JSON.stringify(page, null, 2));
      else printRows(page.items);
    });
  withConnection(
    messages.command('show').description('show one message with its history').argument('<id>'),
  ).action(async (id: string, opts: AdminOptions) => {
    const message = await adminRequest(opts, 'GET', `/api/v1/admin/messages/${encodeURIComponent(id)}`);
    console.log(JSON.stringify(message, null, 2));
  });

  withConnection(program.command('dead-letters').description('list dead letters (admin API)')).action(
    async (opts: AdminOptions) => {
      const page = (await adminRequest(opts, 'GET', '/api/v1/admin/dead-letters')) as { items: MessageRow[] };
      if (opts.json) console.log(JSON.stringify(page, null, 2));
      else printRows(page.items);
    },
  );

  withConnection(
    program
      .command('replay')
      .description(
        'replay dead letters, or send messages waiting for their next retry now, with the current mapping and target',
      )
      .argument('[ids...]', 'message ids')
      .option('--dead-letters', 'replay every dead letter (optionally narrowed by --tenant/--service)')
      .option(
        '--retrying',
        'send every message waiting for its next retry now (optionally narrowed likewise)',
      )
      .option('--tenant <id>')
      .option('--service <key>'),
  ).action(
    async (
      ids: string[],
      opts: AdminOptions & { deadLetters?: boolean; retrying?: boolean; tenant?: string; service?: string },
    ) => {
      const selections = [ids.length > 0, opts.deadLetters === true, opts.retrying === true].filter(Boolean);
      if (selections.length !== 1) throw new Error('name message ids, or use --dead-letters or --retrying');
      const body = opts.deadLetters
        ? { deadLetters: true, tenant: opts.tenant, service: opts.service }
        : opts.retrying
          ? { retrying: true, tenant: opts.tenant, service: opts.service }
          : { ids };
      const result = (await adminRequest(opts, 'POST', '/api/v1/admin/replay', body)) as {
        replayed: string[];
        notReplayable: string[];
      };
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else {
        console.log(`replayed: ${result.replayed.length}`);
        for (const id of result.notReplayable) console.log(`not replayable: ${id}`);
      }
    },
  );
}
