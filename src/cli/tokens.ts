/**
 * `tower tokens`: API tokens for machines, on the configured database (like
 * `tower minions`): `create` one that reads some repositories, or an
 * operator token (the minion inventory, the pending jobs, /metrics); `list`
 * them; `revoke` one. A token is shown once, when it is made.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { createApiTokens, type ApiTokenScope } from '../access/api-tokens.js';
import { createAccessQueries } from '../db/access.js';
import type { Database } from '../db/connection.js';
import { systemClock } from '../lib/clock.js';
import { TowerError } from '../lib/errors.js';
import type { Output } from './graph-commands.js';
import { formatTable } from './minion-admin.js';

/** Repositories one token may name. */
const MAX_REPOSITORIES = 100;

function tokenId(value: string): number {
  const id = Number(value);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new InvalidArgumentError('must be a token id, a positive whole number');
  }
  return id;
}

function repositoryName(value: string, previous: string[] = []): string[] {
  if (!/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/.test(value)) {
    throw new InvalidArgumentError('must be a repository as owner/name');
  }
  if (previous.length >= MAX_REPOSITORIES) {
    throw new InvalidArgumentError(`a token names at most ${MAX_REPOSITORIES} repositories`);
  }
  return [...previous, value];
}

function tokenName(value: string): string {
  if (value.trim() === '' || value.length > 200) {
    throw new InvalidArgumentError('must be 1 to 200 characters');
  }
  return value;
}

/** `open` opens the configured, migrated database; the command closes it. */
export function tokensCommand(open: () => Promise<Database>, io: Output): Command {
  async function withTokens(
    work: (
      tokens: ReturnType<typeof createApiTokens>,
      queries: ReturnType<typeof createAccessQueries>,
    ) => Promise<void>,
  ) {
    const database = await open();
    try {
      const queries = createAccessQueries(database.db);
      await work(createApiTokens({ queries, clock: systemClock }), queries);
    } finally {
      await database.close();
    }
  }

  const command = new Command('tokens').description(
    'API tokens for machines: create one (shown once), list them, revoke one',
  );

  command
    .command('create')
    .description('Make a token that reads the named repositories, or an operator token')
    .option('--repo <owner/name>', 'a repository it reads (repeat for more)', repositoryName)
    .addOption(
      new Option('--operator', 'read everything: the minion inventory, the queue, /metrics'),
    )
    .option('--name <name>', 'a label for people, shown by `tower tokens list`', tokenName)
    .action((options: { repo?: string[]; operator?: boolean; name?: string }) =>
      withTokens(async (tokens, queries) => {
        const repos = options.repo ?? [];
        if ((options.operator === true) === repos.length > 0) {
          throw new TowerError(
            'Say what the token reads: --repo owner/name (one or more), or --operator, not both',
          );
        }
        let scope: ApiTokenScope = { operator: true };
        if (!options.operator) {
          const ids: number[] = [];
          for (const name of repos) {
            const repository = await queries.repositoryByName(name);
            if (!repository) {
              throw new TowerError(
                `Tower does not know ${name}: install the GitHub App on it first`,
              );
            }
            ids.push(repository.id);
          }
          scope = { operator: false, repositoryIds: ids };
        }
        const name = options.name ?? (options.operator ? 'operator' : repos.join(' '));
        const { token, row } = await tokens.create({ name, scope });
        io.out(
          `Token ${row.id} (${name}) made. Copy it now: Tower keeps only a hash and cannot show it again.\n\n` +
            `  ${token}\n\n` +
            'Send it as "Authorization: Bearer <token>".\n',
        );
      }),
    );

  command
    .command('list')
    .description('Every token: id, name, what it reads, when it was made and last used')
    .action(() =>
      withTokens(async (tokens) => {
        const rows = await tokens.list();
        if (rows.length === 0) {
          io.out('No API tokens.\n');
          return;
        }
        io.out(
          formatTable(
            ['ID', 'NAME', 'READS', 'CREATED', 'LAST USED', 'STATE'],
            rows.map((row) => [
              String(row.id),
              row.name,
              row.operator
                ? 'everything (operator)'
                : `repositories ${row.repositoryIds?.join(',')}`,
              row.createdAt.toISOString(),
              row.lastUsedAt ? row.lastUsedAt.toISOString() : 'never',
              row.revokedAt ? `revoked ${row.revokedAt.toISOString()}` : 'active',
            ]),
          ),
        );
      }),
    );

  command
    .command('revoke')
    .description('Refuse a token from now on')
    .argument('<id>', 'the token id (see `tower tokens list`)', tokenId)
    .action((id: number) =>
      withTokens(async (tokens) => {
        const row = await tokens.revoke(id);
        if (!row) throw new TowerError(`No API token ${id}`);
        io.out(`Token ${id} (${row.name}) is revoked: it is refused from now on.\n`);
      }),
    );

  return command;
}
