/**
 * Events (a push, a pull request's head commit) and what GitHub's side
 * needs of them: deduplication, a pull request's graphs, `/tower
 * ok-to-test` approvals. src/github/ decides; this stores.
 */
import { and, desc, eq, inArray, ne } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { events, graphs, okToTest, repositories } from './schema.js';

export type NewEvent = {
  repositoryId: number;
  type: 'push' | 'pull_request' | 'land' | 'cron' | 'trigger' | 'api';
  dedupKey: string;
  sha: string;
  ref: string | null;
  author: string | null;
  pullNumber: number | null;
  payload: Record<string, unknown>;
};

export function createEventQueries(db: TowerDb) {
  return {
    /** Stores the event once per dedup key: a redelivery gets the first one's id. */
    async recordEvent(event: NewEvent): Promise<{ id: number; created: boolean }> {
      const [inserted] = await db
        .insert(events)
        .values(event)
        .onConflictDoNothing({ target: events.dedupKey })
        .returning({ id: events.id });
      if (inserted) return { id: inserted.id, created: true };
      const [existing] = await db
        .select({ id: events.id })
        .from(events)
        .where(eq(events.dedupKey, event.dedupKey));
      return { id: existing!.id, created: false };
    },

    /** The graphs of the pull request's events other than `exceptEventId` that still run. */
    async runningGraphsOfPull(
      repositoryId: number,
      pullNumber: number,
      exceptEventId: number | null,
    ): Promise<number[]> {
      const rows = await db
        .select({ id: graphs.id })
        .from(graphs)
        .innerJoin(events, eq(events.id, graphs.eventId))
        .where(
          and(
            eq(events.repositoryId, repositoryId),
            eq(events.pullNumber, pullNumber),
            eq(graphs.state, 'running'),
            exceptEventId === null ? undefined : ne(events.id, exceptEventId),
          ),
        );
      return rows.map((row) => row.id);
    },

    /** The pull request's newest event, with its graphs (none when nothing was built). */
    async latestOfPull(
      repositoryId: number,
      pullNumber: number,
    ): Promise<{ eventId: number; sha: string; graphIds: number[] } | undefined> {
      const [event] = await db
        .select({ id: events.id, sha: events.sha })
        .from(events)
        .where(and(eq(events.repositoryId, repositoryId), eq(events.pullNumber, pullNumber)))
        .orderBy(desc(events.id))
        .limit(1);
      if (!event) return undefined;
      const rows = await db
        .select({ id: graphs.id })
        .from(graphs)
        .where(inArray(graphs.eventId, [event.id]));
      return { eventId: event.id, sha: event.sha, graphIds: rows.map((row) => row.id) };
    },

    /** The graphs built for events of this commit of the repository. */
    async graphsOfSha(repositoryId: number, sha: string): Promise<number[]> {
      const rows = await db
        .select({ id: graphs.id })
        .from(graphs)
        .where(and(eq(graphs.repositoryId, repositoryId), eq(graphs.sha, sha)));
      return rows.map((row) => row.id);
    },

    /** Where a comment about the event goes: its repository, installation and pull request. */
    async commentTarget(
      eventId: number,
    ): Promise<
      { fullName: string; installationId: number; pullNumber: number | null } | undefined
    > {
      const [row] = await db
        .select({
          fullName: repositories.fullName,
          installationId: repositories.installationId,
          pullNumber: events.pullNumber,
        })
        .from(events)
        .innerJoin(repositories, eq(repositories.id, events.repositoryId))
        .where(eq(events.id, eventId));
      return row;
    },

    async approveOkToTest(input: {
      repositoryId: number;
      pullNumber: number;
      headSha: string;
      approvedBy: string;
    }): Promise<void> {
      await db.insert(okToTest).values(input).onConflictDoNothing();
    },

    async isOkToTest(repositoryId: number, pullNumber: number, headSha: string): Promise<boolean> {
      const rows = await db
        .select({ by: okToTest.approvedBy })
        .from(okToTest)
        .where(
          and(
            eq(okToTest.repositoryId, repositoryId),
            eq(okToTest.pullNumber, pullNumber),
            eq(okToTest.headSha, headSha),
          ),
        );
      return rows.length > 0;
    },
  };
}

export type EventQueries = ReturnType<typeof createEventQueries>;
