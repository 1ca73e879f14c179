/** The outbox of comments Tower posts, and the comments whose commands it carried out. */
import { and, asc, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { handledComments, outgoingComments } from './schema.js';

export type OutgoingComment = typeof outgoingComments.$inferSelect;

export function createCommentQueries(db: TowerDb) {
  return {
    /**
     * Queues a comment once per dedup key. With `replace`, a comment of that
     * key gets the new body instead: once posted, it is edited in place.
     */
    async enqueue(comment: {
      dedupKey: string;
      installationId: number;
      fullName: string;
      issueNumber: number;
      body: string;
      replace?: boolean;
    }): Promise<void> {
      const { replace, ...values } = comment;
      const insert = db.insert(outgoingComments).values(values);
      if (!replace) {
        await insert.onConflictDoNothing();
        return;
      }
      await insert.onConflictDoUpdate({
        target: outgoingComments.dedupKey,
        set: { body: values.body, sentAt: null, dueAt: sql`now()`, attempts: 0, lastError: null },
        // An unchanged body is not edited again.
        setWhere: sql`${outgoingComments.body} <> excluded.body`,
      });
    },

    /** Leases up to `limit` unsent comments that are due. */
    async takeDue(now: Date, leaseMs: number, limit: number): Promise<OutgoingComment[]> {
      const due = db
        .select({ id: outgoingComments.id })
        .from(outgoingComments)
        .where(
          and(
            isNull(outgoingComments.sentAt),
            lte(outgoingComments.dueAt, now),
            or(isNull(outgoingComments.leaseExpiresAt), lte(outgoingComments.leaseExpiresAt, now)),
          ),
        )
        .orderBy(asc(outgoingComments.id))
        .limit(limit)
        .for('update', { skipLocked: true });
      return db
        .update(outgoingComments)
        .set({
          leaseExpiresAt: new Date(now.getTime() + leaseMs),
          attempts: sql`${outgoingComments.attempts} + 1`,
        })
        .where(sql`${outgoingComments.id} in (${due})`)
        .returning();
    },

    async markSent(id: number, githubId: number, at: Date): Promise<void> {
      await db
        .update(outgoingComments)
        .set({ githubId, sentAt: at, leaseExpiresAt: null, lastError: null })
        .where(eq(outgoingComments.id, id));
    },

    async retryLater(id: number, dueAt: Date, error: string): Promise<void> {
      await db
        .update(outgoingComments)
        .set({ dueAt, leaseExpiresAt: null, lastError: error })
        .where(eq(outgoingComments.id, id));
    },

    /** Gives up on a comment GitHub will never take (the pull request is gone, say). */
    async abandon(id: number, at: Date, error: string): Promise<void> {
      await db
        .update(outgoingComments)
        .set({ sentAt: at, leaseExpiresAt: null, lastError: error })
        .where(eq(outgoingComments.id, id));
    },

    /** True the first time for a comment: its commands are carried out then, never again. */
    async claimComment(commentId: number): Promise<boolean> {
      const rows = await db
        .insert(handledComments)
        .values({ commentId })
        .onConflictDoNothing()
        .returning({ id: handledComments.commentId });
      return rows.length === 1;
    },
  };
}

export type CommentQueries = ReturnType<typeof createCommentQueries>;
