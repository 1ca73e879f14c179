/**
 * What an operator does to minions (`tower minions`): list them, release a
 * quarantined one once its machine is looked after, retire one for good.
 */
import type { TowerDb } from '../db/connection.js';
import { createMinionQueries, type MinionRow } from '../db/minions.js';
import { NotFoundError } from './errors.js';

export type MinionSummary = Pick<
  MinionRow,
  'id' | 'name' | 'tags' | 'trust' | 'state' | 'quarantinedAt' | 'lastSeenAt'
>;

export function createMinionAdmin({ db }: { db: TowerDb }) {
  const queries = createMinionQueries(db);
  const summary = (row: MinionRow): MinionSummary => ({
    id: row.id,
    name: row.name,
    tags: row.tags,
    trust: row.trust,
    state: row.state,
    quarantinedAt: row.quarantinedAt,
    lastSeenAt: row.lastSeenAt,
  });
  return {
    async list(): Promise<MinionSummary[]> {
      return (await queries.listMinions()).map(summary);
    },

    /**
     * Back to active with its consecutive exceptions at 0: it claims again.
     * A retired minion stays retired (the answer shows it).
     */
    async releaseMinion(minionId: number): Promise<MinionSummary> {
      const row = await queries.releaseMinion(minionId);
      if (!row) throw new NotFoundError(`No minion ${minionId}`);
      return summary(row);
    },

    /**
     * Revokes the minion's credential (a lost machine, a leaked credential):
     * every request with it is refused from now on, and the runs it held are
     * retried elsewhere at the next maintenance pass.
     */
    async retireMinion(minionId: number): Promise<MinionSummary> {
      const row = await queries.retireMinion(minionId);
      if (!row) throw new NotFoundError(`No minion ${minionId}`);
      return summary(row);
    },
  };
}

export type MinionAdmin = ReturnType<typeof createMinionAdmin>;
