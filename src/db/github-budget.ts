/**
 * GitHub's content-creation limit (80 requests a minute and 500 an hour per
 * installation) as a budget every replica shares: each content-creating
 * request takes a slot, recorded with its time, under the installation's
 * budget row lock, and a slot frees when its request leaves the window.
 * Tower keeps a margin below GitHub's numbers for requests it does not
 * count (and for other apps' mistakes it cannot see).
 *
 * When GitHub refuses anyway, the installation waits: until GitHub's
 * retry-after when it gives one, otherwise (a secondary limit that names no
 * time) for a back-off that doubles with each refusal in a row, from 5 s to
 * 15 minutes, and starts again once a request goes through.
 */
import { and, asc, eq, gt, lt, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { githubBudgets, githubContentRequests } from './schema.js';

export type ContentLimits = { perMinute: number; perHour: number };

/** GitHub's 80 and 500, less a margin. */
export const DEFAULT_CONTENT_LIMITS: ContentLimits = { perMinute: 70, perHour: 450 };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const FIRST_BACKOFF_MS = 5_000;
const MAX_BACKOFF_MS = 15 * MINUTE;

/** The wait after the `refusals`-th refusal in a row that named no time: 5 s, 10 s, 20 s … 15 min. */
export function refusalBackoffMs(refusals: number): number {
  // Past 2^8 the cap has long been reached; the exponent stays small.
  return Math.min(FIRST_BACKOFF_MS * 2 ** Math.min(Math.max(refusals - 1, 0), 8), MAX_BACKOFF_MS);
}

export function createGitHubBudget(db: TowerDb, limits: ContentLimits = DEFAULT_CONTENT_LIMITS) {
  async function block(installationId: number, until: Date): Promise<void> {
    await db
      .insert(githubBudgets)
      .values({ installationId, blockedUntil: until })
      .onConflictDoUpdate({
        target: githubBudgets.installationId,
        set: {
          blockedUntil: sql`greatest(${githubBudgets.blockedUntil}, excluded.blocked_until)`,
        },
      });
  }

  return {
    async take(
      installationId: number,
      wanted: number,
      now: Date,
    ): Promise<{ granted: number; retryAt: Date | null; backingOff: boolean }> {
      if (wanted <= 0) return { granted: 0, retryAt: null, backingOff: false };
      return db.transaction(async (tx) => {
        await tx.insert(githubBudgets).values({ installationId }).onConflictDoNothing();
        const [budget] = await tx
          .select()
          .from(githubBudgets)
          .where(eq(githubBudgets.installationId, installationId))
          .for('update');
        // Refused before without a time to retry: a success should say so (`succeeded`).
        const backingOff = (budget?.refusals ?? 0) > 0;
        if (budget?.blockedUntil && budget.blockedUntil > now) {
          return { granted: 0, retryAt: budget.blockedUntil, backingOff };
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
        if (granted === wanted) return { granted, retryAt: null, backingOff };
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
          backingOff,
        };
      });
    },

    /**
     * GitHub refused a request: the installation waits until `retryAt` when
     * GitHub gave one, otherwise for the next step of the back-off. Answers
     * until when.
     */
    async refused(installationId: number, now: Date, retryAt: Date | undefined): Promise<Date> {
      if (retryAt) {
        await block(installationId, retryAt);
        return retryAt;
      }
      const [row] = await db
        .insert(githubBudgets)
        .values({ installationId, refusals: 1 })
        .onConflictDoUpdate({
          target: githubBudgets.installationId,
          set: { refusals: sql`${githubBudgets.refusals} + 1` },
        })
        .returning({ refusals: githubBudgets.refusals });
      const until = new Date(now.getTime() + refusalBackoffMs(row?.refusals ?? 1));
      await block(installationId, until);
      return until;
    },

    /** A request went through after refusals: the next refusal starts the back-off again. */
    async succeeded(installationId: number): Promise<void> {
      await db
        .update(githubBudgets)
        .set({ refusals: 0 })
        .where(
          and(eq(githubBudgets.installationId, installationId), gt(githubBudgets.refusals, 0)),
        );
    },

    /** GitHub said to wait until `until` (a retry-after, a spent primary limit). */
    block,
  };
}

export type GitHubBudget = ReturnType<typeof createGitHubBudget>;
