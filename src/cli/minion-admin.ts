/**
 * `tower minions`: what an operator does to the registered minions, on the
 * configured database (like `tower migrate`): `list` them, `release` one
 * that was quarantined after too many exceptions in a row, `retire` one for
 * good (its credential is refused from then on).
 */
import { Command, InvalidArgumentError } from 'commander';
import type { Database } from '../db/connection.js';
import { createMinionAdmin, type MinionSummary } from '../minions/admin.js';
import type { Output } from './graph-commands.js';

/** Left-aligned columns, two spaces apart. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const when = (date: Date | null) => (date ? date.toISOString() : 'never');

function state(minion: MinionSummary): string {
  return minion.state === 'quarantined' && minion.quarantinedAt
    ? `quarantined since ${minion.quarantinedAt.toISOString()}`
    : minion.state;
}

function minionId(value: string): number {
  const id = Number(value);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new InvalidArgumentError('must be a minion id, a positive whole number');
  }
  return id;
}

/** `open` opens the configured, migrated database; the command closes it. */
export function minionsCommand(open: () => Promise<Database>, io: Output): Command {
  async function withAdmin(work: (admin: ReturnType<typeof createMinionAdmin>) => Promise<void>) {
    const database = await open();
    try {
      await work(createMinionAdmin({ db: database.db }));
    } finally {
      await database.close();
    }
  }

  const command = new Command('minions').description(
    'List the registered minions, release a quarantined one, or retire one',
  );

  command
    .command('list')
    .description('Every minion: id, name, tags, trust, state, last seen')
    .action(() =>
      withAdmin(async (admin) => {
        const minions = await admin.list();
        if (minions.length === 0) {
          io.out('No minions are registered.\n');
          return;
        }
        io.out(
          formatTable(
            ['ID', 'NAME', 'TAGS', 'TRUST', 'STATE', 'LAST SEEN'],
            minions.map((m) => [
              String(m.id),
              m.name,
              m.tags.join(','),
              m.trust,
              state(m),
              when(m.lastSeenAt),
            ]),
          ),
        );
      }),
    );

  command
    .command('release')
    .description('Let a quarantined minion claim jobs again (after looking after its machine)')
    .argument('<id>', 'the minion id (see `tower minions list`)', minionId)
    .action((id: number) =>
      withAdmin(async (admin) => {
        const minion = await admin.releaseMinion(id);
        io.out(
          minion.state === 'retired'
            ? `Minion ${id} (${minion.name}) is retired and stays retired; register a new minion instead.\n`
            : `Minion ${id} (${minion.name}) is active: it claims jobs again.\n`,
        );
      }),
    );

  command
    .command('retire')
    .description(
      "Revoke a minion's credential for good (a lost machine, a leaked credential); its running jobs are retried elsewhere",
    )
    .argument('<id>', 'the minion id (see `tower minions list`)', minionId)
    .action((id: number) =>
      withAdmin(async (admin) => {
        const minion = await admin.retireMinion(id);
        io.out(
          `Minion ${id} (${minion.name}) is retired: its credential is refused from now on. ` +
            'Register the machine again to give it a new one.\n',
        );
      }),
    );

  return command;
}
