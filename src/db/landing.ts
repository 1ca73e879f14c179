/**
 * Landing queues and their entries. src/autoland/runner.ts decides; this
 * stores, each queue's changes under its row lock.
 */
import { and, asc, desc, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { landingQueueEntries, landingQueues, outgoingComments, repositories } from './schema.js';

export type LandingQueueRow = typeof landingQueues.$inferSelect;
export type LandingEntryRow = typeof landingQueueEntries.$inferSelect;
export type QueueKey = { repositoryId: number; baseBranch: string };

export type EntryUpdate = {
  pullNumber: number;
  headSha?: string;
  priority?: number;
  state: LandingEntryRow['state'];
  reason?: string | null;
  landedSha?: string | null;
  enqueuedBy?: string;
};

const queueIs = (key: QueueKey) =>
  and(
    eq(landingQueues.repositoryId, key.repositoryId),
    eq(landingQueues.baseBranch, key.baseBranch),
  );
const entryOfQueue = (key: QueueKey) =>
  and(
    eq(landingQueueEntries.repositoryId, key.repositoryId),
    eq(landingQueueEntries.baseBranch, key.baseBranch),
  );

function landingQueries(db: TowerDb) {
  return {
    async lockQueue(key: QueueKey): Promise<LandingQueueRow | undefined> {
      const [row] = await db.select().from(landingQueues).where(queueIs(key)).for('update');
      return row;
    },

    async saveQueue(row: {
      repositoryId: number;
      baseBranch: string;
      installationId: number;
      fullName: string;
      state: unknown;
      runner: unknown;
      active: boolean;
    }): Promise<void> {
      await db
        .insert(landingQueues)
        .values(row)
        .onConflictDoUpdate({
          target: [landingQueues.repositoryId, landingQueues.baseBranch],
          set: {
            state: row.state,
            runner: row.runner,
            active: row.active,
            installationId: row.installationId,
            fullName: row.fullName,
            updatedAt: sql`now()`,
          },
        });
    },

    async queue(key: QueueKey): Promise<LandingQueueRow | undefined> {
      const [row] = await db.select().from(landingQueues).where(queueIs(key));
      return row;
    },

    async activeQueues(): Promise<QueueKey[]> {
      return db
        .select({ repositoryId: landingQueues.repositoryId, baseBranch: landingQueues.baseBranch })
        .from(landingQueues)
        .where(eq(landingQueues.active, true));
    },

    /** A repository Tower is installed on, by its full name (any case), as the queue API names it. */
    async repositoryNamed(fullName: string): Promise<{ id: number; fullName: string } | undefined> {
      const [row] = await db
        .select({ id: repositories.id, fullName: repositories.fullName })
        .from(repositories)
        .where(
          and(
            sql`lower(${repositories.fullName}) = ${fullName.toLowerCase()}`,
            isNull(repositories.removedAt),
          ),
        )
        .limit(1);
      return row;
    },

    async queuesOf(repositoryId: number): Promise<LandingQueueRow[]> {
      return db
        .select()
        .from(landingQueues)
        .where(eq(landingQueues.repositoryId, repositoryId))
        .orderBy(asc(landingQueues.baseBranch));
    },

    async upsertEntry(key: QueueKey, entry: EntryUpdate): Promise<void> {
      const values = {
        repositoryId: key.repositoryId,
        baseBranch: key.baseBranch,
        pullNumber: entry.pullNumber,
        headSha: entry.headSha ?? '',
        priority: entry.priority ?? 0,
        state: entry.state,
        reason: entry.reason ?? null,
        landedSha: entry.landedSha ?? null,
        enqueuedBy: entry.enqueuedBy ?? '',
      };
      await db
        .insert(landingQueueEntries)
        .values(values)
        .onConflictDoUpdate({
          target: [landingQueueEntries.repositoryId, landingQueueEntries.pullNumber],
          set: {
            baseBranch: key.baseBranch,
            state: entry.state,
            reason: entry.reason ?? null,
            landedSha: entry.landedSha ?? null,
            ...(entry.headSha === undefined ? {} : { headSha: entry.headSha }),
            ...(entry.priority === undefined ? {} : { priority: entry.priority }),
            ...(entry.enqueuedBy === undefined
              ? {}
              : { enqueuedBy: entry.enqueuedBy, enqueuedAt: sql`now()` }),
            checkDirty: true,
            updatedAt: sql`now()`,
          },
        });
    },

    async entry(repositoryId: number, pullNumber: number): Promise<LandingEntryRow | undefined> {
      const [row] = await db
        .select()
        .from(landingQueueEntries)
        .where(
          and(
            eq(landingQueueEntries.repositoryId, repositoryId),
            eq(landingQueueEntries.pullNumber, pullNumber),
          ),
        );
      return row;
    },

    /** Entries still in the queue, or whose check run is behind: what a pass looks at. */
    async liveEntries(key: QueueKey): Promise<LandingEntryRow[]> {
      return db
        .select()
        .from(landingQueueEntries)
        .where(
          and(
            entryOfQueue(key),
            or(
              inArray(landingQueueEntries.state, ['queued', 'testing']),
              eq(landingQueueEntries.checkDirty, true),
            ),
          ),
        )
        .orderBy(asc(landingQueueEntries.pullNumber));
    },

    /** The queue's entries, the most recently changed first, at most `limit`. */
    async recentEntries(key: QueueKey, limit: number): Promise<LandingEntryRow[]> {
      return db
        .select()
        .from(landingQueueEntries)
        .where(entryOfQueue(key))
        .orderBy(desc(landingQueueEntries.updatedAt), desc(landingQueueEntries.pullNumber))
        .limit(limit);
    },

    async recordCheck(
      id: number,
      check: { checkRunId: number; checkSha: string; checkHash: string },
    ): Promise<void> {
      await db
        .update(landingQueueEntries)
        .set({ ...check, checkDirty: false })
        .where(eq(landingQueueEntries.id, id));
    },

    /** Queues with an entry whose check run is behind: the runner looks at them even when quiet. */
    async queuesWithDirtyChecks(): Promise<QueueKey[]> {
      return db
        .selectDistinct({
          repositoryId: landingQueueEntries.repositoryId,
          baseBranch: landingQueueEntries.baseBranch,
        })
        .from(landingQueueEntries)
        .where(eq(landingQueueEntries.checkDirty, true));
    },

    /** The pull request's one landing comment: posted once, then edited in place. */
    async landingComment(input: {
      installationId: number;
      fullName: string;
      repositoryId: number;
      pullNumber: number;
      body: string;
    }): Promise<void> {
      await db
        .insert(outgoingComments)
        .values({
          dedupKey: `landing:${input.repositoryId}:${input.pullNumber}`,
          installationId: input.installationId,
          fullName: input.fullName,
          issueNumber: input.pullNumber,
          body: input.body,
        })
        .onConflictDoUpdate({
          target: outgoingComments.dedupKey,
          set: { body: input.body, sentAt: null, dueAt: sql`now()`, attempts: 0, lastError: null },
          setWhere: sql`${outgoingComments.body} <> excluded.body`,
        });
    },
  };
}

export type LandingQueries = ReturnType<typeof landingQueries>;

export function createLandingStore(db: TowerDb) {
  return {
    ...landingQueries(db),
    transaction: <T>(work: (q: LandingQueries) => Promise<T>) =>
      db.transaction((tx) => work(landingQueries(tx))),
  };
}

export type LandingStore = ReturnType<typeof createLandingStore>;
