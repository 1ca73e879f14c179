/**
 * Check reports and their check runs (src/checks/publisher.ts decides what
 * to send; this stores what was sent), and the lookups GitHub's Re-run and
 * action buttons need.
 */
import { and, desc, eq, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { checkReports, checkRuns, graphs, repositories } from './schema.js';

export type CheckRunRecord = typeof checkRuns.$inferSelect;

const timestamp = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/** postgres.js answers raw queries with an array of rows, PGlite with `{ rows }`. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export function createCheckReportQueries(db: TowerDb) {
  return {
    /** The report of a graph, created with it; the existing one for a graph that has one. */
    async addGraphReport(input: {
      eventId: number;
      graphId: number;
      repositoryId: number;
      installationId: number;
      headSha: string;
    }): Promise<number> {
      await db.insert(checkReports).values(input).onConflictDoNothing();
      const [row] = await db
        .select({ id: checkReports.id })
        .from(checkReports)
        .where(eq(checkReports.graphId, input.graphId));
      return row!.id;
    },

    /** A report with one fixed check run (definition errors); once per event. */
    async addStaticReport(input: {
      eventId: number;
      repositoryId: number;
      installationId: number;
      headSha: string;
      checkRun: unknown;
    }): Promise<void> {
      await db
        .insert(checkReports)
        .values({
          eventId: input.eventId,
          repositoryId: input.repositoryId,
          installationId: input.installationId,
          headSha: input.headSha,
          staticCheckRun: input.checkRun,
        })
        .onConflictDoNothing();
    },

    /** The graph's report is looked at again (its graph reopened after it was finished). */
    async reopenGraphReport(graphId: number, now: Date): Promise<void> {
      await db
        .update(checkReports)
        .set({ finished: false, dueAt: now, holdUntil: null })
        .where(eq(checkReports.graphId, graphId));
    },

    async takeDue(now: Date, leaseMs: number, limit: number) {
      const at = timestamp(now);
      const until = timestamp(new Date(now.getTime() + leaseMs));
      const rows = rowsOf<{
        id: number | string;
        graph_id: number | string | null;
        installation_id: number | string;
        head_sha: string;
        static_check_run: unknown;
        published_changes: number | string;
        changes: number | string | null;
        full_name: string;
      }>(
        await db.execute(sql`
          with due as (
            select c.id from ${checkReports} c
            left join ${graphs} g on g.id = c.graph_id
            where not c.finished
              and (c.lease_expires_at is null or c.lease_expires_at < ${at})
              and (c.hold_until is null or c.hold_until <= ${at})
              and (c.due_at <= ${at} or g.changes > c.published_changes)
            order by c.due_at, c.id
            limit ${limit}
            for update of c skip locked
          )
          update ${checkReports} c set lease_expires_at = ${until}, attempts = c.attempts + 1
          from due
          where c.id = due.id
          returning c.id, c.graph_id, c.installation_id, c.head_sha, c.static_check_run,
            c.published_changes,
            (select g.changes from ${graphs} g where g.id = c.graph_id) as changes,
            (select r.full_name from ${repositories} r where r.id = c.repository_id) as full_name`),
      );
      return rows.map((row) => ({
        id: Number(row.id),
        graphId: row.graph_id === null ? null : Number(row.graph_id),
        installationId: Number(row.installation_id),
        fullName: row.full_name,
        headSha: row.head_sha,
        staticCheckRun: row.static_check_run,
        publishedChanges: Number(row.published_changes),
        changes: row.changes === null ? 0 : Number(row.changes),
      }));
    },

    /** The newest generation of each of the report's check runs. */
    async checkRuns(reportId: number): Promise<CheckRunRecord[]> {
      return db
        .selectDistinctOn([checkRuns.key])
        .from(checkRuns)
        .where(eq(checkRuns.reportId, reportId))
        .orderBy(checkRuns.key, desc(checkRuns.generation));
    },

    async addCheckRun(
      reportId: number,
      key: string,
      generation: number,
      name: string,
    ): Promise<CheckRunRecord> {
      await db.insert(checkRuns).values({ reportId, key, generation, name }).onConflictDoNothing();
      const [row] = await db
        .select()
        .from(checkRuns)
        .where(
          and(
            eq(checkRuns.reportId, reportId),
            eq(checkRuns.key, key),
            eq(checkRuns.generation, generation),
          ),
        );
      return row!;
    },

    async recordSent(
      checkRunId: number,
      sent: {
        githubId: number;
        sentHash: string;
        status: 'queued' | 'in_progress' | 'completed';
        annotationsSent: number;
        at: Date;
      },
    ): Promise<void> {
      await db
        .update(checkRuns)
        .set({
          githubId: sent.githubId,
          sentHash: sent.sentHash,
          status: sent.status,
          annotationsSent: sent.annotationsSent,
          sentAt: sent.at,
        })
        .where(eq(checkRuns.id, checkRunId));
    },

    async release(
      reportId: number,
      outcome: {
        publishedChanges: number;
        finished: boolean;
        dueAt: Date;
        holdUntil: Date | null;
        error: string | null;
      },
    ): Promise<void> {
      await db
        .update(checkReports)
        .set({
          publishedChanges: outcome.publishedChanges,
          finished: outcome.finished,
          dueAt: outcome.dueAt,
          holdUntil: outcome.holdUntil,
          lastError: outcome.error,
          leaseExpiresAt: null,
          ...(outcome.error === null ? { attempts: 0 } : {}),
        })
        .where(eq(checkReports.id, reportId));
    },

    /** What a GitHub check run of Tower's stands for: its graph and key. */
    async byGithubId(
      githubId: number,
    ): Promise<{ reportId: number; graphId: number | null; key: string } | undefined> {
      const [row] = await db
        .select({ reportId: checkRuns.reportId, graphId: checkReports.graphId, key: checkRuns.key })
        .from(checkRuns)
        .innerJoin(checkReports, eq(checkReports.id, checkRuns.reportId))
        .where(eq(checkRuns.githubId, githubId))
        .limit(1);
      return row;
    },

    /** Every check run of Tower's for a commit of a repository (for a suite's Re-run). */
    async graphsOfSha(repositoryId: number, sha: string): Promise<number[]> {
      const rows = await db
        .select({ graphId: checkReports.graphId })
        .from(checkReports)
        .where(and(eq(checkReports.repositoryId, repositoryId), eq(checkReports.headSha, sha)));
      return rows.flatMap((row) => (row.graphId === null ? [] : [row.graphId]));
    },
  };
}

export type CheckReportQueries = ReturnType<typeof createCheckReportQueries>;
