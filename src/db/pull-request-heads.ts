/**
 * Each head commit of a pull request: when it arrived and who pushed it.
 * src/github/ decides what that means for commands and trust; this stores.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { pullRequestHeads } from './schema.js';

export type PullRequestHead = { arrivedAt: Date; pushedBy: string | null };

export function createPullRequestHeadQueries(db: TowerDb) {
  return {
    /**
     * Records a head's arrival. The head came again (a redelivery, a
     * reopening, a force-push back to it): the later arrival counts, and a
     * known pusher is kept when the new event names none.
     */
    async recordHead(input: {
      repositoryId: number;
      pullNumber: number;
      headSha: string;
      arrivedAt: Date;
      pushedBy: string | null;
    }): Promise<void> {
      await db
        .insert(pullRequestHeads)
        .values(input)
        .onConflictDoUpdate({
          target: [
            pullRequestHeads.repositoryId,
            pullRequestHeads.pullNumber,
            pullRequestHeads.headSha,
          ],
          set: {
            arrivedAt: sql`greatest(${pullRequestHeads.arrivedAt}, excluded.arrived_at)`,
            pushedBy: sql`coalesce(excluded.pushed_by, ${pullRequestHeads.pushedBy})`,
          },
        });
    },

    async head(
      repositoryId: number,
      pullNumber: number,
      headSha: string,
    ): Promise<PullRequestHead | undefined> {
      const [row] = await db
        .select({ arrivedAt: pullRequestHeads.arrivedAt, pushedBy: pullRequestHeads.pushedBy })
        .from(pullRequestHeads)
        .where(
          and(
            eq(pullRequestHeads.repositoryId, repositoryId),
            eq(pullRequestHeads.pullNumber, pullNumber),
            eq(pullRequestHeads.headSha, headSha),
          ),
        );
      return row;
    },
  };
}

export type PullRequestHeadQueries = ReturnType<typeof createPullRequestHeadQueries>;
