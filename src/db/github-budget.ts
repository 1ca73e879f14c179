/**
 * GitHub's content-creation limit (80 requests a minute and 500 an hour per
 * installation) as a budget every replica shares: each content-creating
 * request takes a slot, recorded with its time, under the installation's
 * budget row lock, and a slot frees when its request leaves the window.
 * Tower keeps a margin below GitHub's numbers for requests it does not
 * count (and for other apps' mistakes it cannot see).
 */
import { and, asc, eq, gt, lt, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { githubBudgets, githubContentRequests } from './schema.js';

export type ContentLimits = { perMinute: number; perHour: number };

/** GitHub's 80 and 500, less a margin. */
export const DEFAULT_CONTENT_LIMITS: ContentLimits = { perMinute: 70, perHour: 450 };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export function createGitHubBudget(db: TowerDb, limits: ContentLimits = DEFAULT_CONTENT_LIMITS) {
  return {
    async take(
      installationId: number,
      wanted: number,
      now: Date,
    ): Promise<{ granted: number; retryAt: Date | null }> {
      if (wanted <= 0) return { granted: 0, retryAt: null };
      return db.transaction(async (tx) => {
        await tx.insert(githubBudgets).values({ installationId }).onConflictDoNothing();
        const [budget] = await tx
          .select()
          .from(githubBudgets)
          .where(eq(githubBudgets.installationId, installationId))
          .for('update');
        if (budget?.blockedUntil && budget.blockedUntil > now) {
          return { granted: 0, retryAt: budget.blockedUntil };
        }
        const hourAgo = new Date(now.getTime() - HOUR);
        await tx
          .delete(githubContentRequests)
          .where(
            and(
              eq(githubContentRequests.installationId, installationId),
              lt(githubContentRequests.at, hourAgo),
            ),
          );
        const sent = await tx
          .select({ at: githubContentRequests.at })
          .from(githubContentRequests)
          .where(
            and(
              eq(githubContentRequests.installationId, installationId),
              gt(githubContentRequests.at, hourAgo),
            ),
          )
          .orderBy(asc(githubContentRequests.at));
        const minuteAgo = now.getTime() - MINUTE;
        const inMinute = sent.filter((row) => row.at.getTime() > minuteAgo);
        const room = Math.max(
          0,
          Math.min(limits.perMinute - inMinute.length, limits.perHour - sent.length),
        );
        const granted = Math.min(wanted, room);
        if (granted > 0) {
          await tx
            .insert(githubContentRequests)
            .values(Array.from({ length: granted }, () => ({ installationId, at: now })));
        }
        if (granted === wanted) return { granted, retryAt: null };
        // When the window that is full lets its oldest request go.
        const freeAt = [
          inMinute.length + granted >= limits.perMinute && inMinute[0]
            ? inMinute[0].at.getTime() + MINUTE
            : undefined,
          sent.length + granted >= limits.perHour && sent[0]
            ? sent[0].at.getTime() + HOUR
            : undefined,
        ].filter((t): t is number => t !== undefined);
        return {
          granted,
          retryAt: new Date(freeAt.length > 0 ? Math.max(...freeAt) : now.getTime() + 1000),
        };
      });
    },

    async block(installationId: number, until: Date): Promise<void> {
      await db
        .insert(githubBudgets)
        .values({ installationId, blockedUntil: until })
        .onConflictDoUpdate({
          target: githubBudgets.installationId,
          set: {
            blockedUntil: sql`greatest(${githubBudgets.blockedUntil}, excluded.blocked_until)`,
          },
        });
    },
  };
}

export type GitHubBudget = ReturnType<typeof createGitHubBudget>;
