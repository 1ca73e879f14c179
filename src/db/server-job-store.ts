/**
 * Storage for server-side jobs (src/scheduler/server-jobs.ts): timer due
 * times, notify runs, breakpoint approvals, and the chunk jobs that range
 * jobs materialise. Part of the scheduler's queries (scheduler-store.ts
 * spreads them in), so that they run inside the event's transaction.
 */
import { and, asc, count, eq, gte, inArray, isNull, lte, sql, type SQL } from 'drizzle-orm';
import type { JobSpec } from '../lib/graph-spec.js';
import type { TowerDb } from './connection.js';
import { jobApprovals, jobs, logChunks, minions, runs } from './schema.js';

type JobRow = typeof jobs.$inferSelect;
type RunRow = typeof runs.$inferSelect;
type RunCause = RunRow['cause'];

/** A chunk job to store or to reopen: its spec and when it stops waiting for a minion. */
export type ChunkWrite = { definition: JobSpec; requestDeadline: Date | null };

export type ApprovalRow = typeof jobApprovals.$inferSelect;

/** `leaseNow`: "now" for leases, as SQL (the database's time; src/db/scheduler-store.ts). */
export function serverJobQueries(db: TowerDb, leaseNow: () => SQL) {
  return {
    /** Pending timers due by `now`, the earliest first. */
    async dueTimers(now: Date): Promise<number[]> {
      const rows = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(and(eq(jobs.state, 'pending'), eq(jobs.kind, 'timer'), lte(jobs.dueAt, now)))
        .orderBy(asc(jobs.dueAt), asc(jobs.id));
      return rows.map((row) => row.id);
    },

    async setDueAt(jobId: number, dueAt: Date | null): Promise<void> {
      await db.update(jobs).set({ dueAt }).where(eq(jobs.id, jobId));
    },

    /** Pending jobs of a server-side kind (they have no tag set), the oldest first. */
    async pendingServerJobs(kind: string, limit: number): Promise<number[]> {
      const rows = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(and(eq(jobs.state, 'pending'), isNull(jobs.tagSetId), eq(jobs.kind, kind)))
        .orderBy(asc(jobs.pendingSince), asc(jobs.id))
        .limit(limit);
      return rows.map((row) => row.id);
    },

    /** A run the server itself performs (a notification): no minion, but a lease all the same. */
    async insertServerRun(run: {
      jobId: number;
      cause: RunCause;
      now: Date;
      leaseMs: number;
    }): Promise<RunRow> {
      const [row] = await db
        .insert(runs)
        .values({
          jobId: run.jobId,
          attempt: sql`(select coalesce(max(${runs.attempt}), 0) + 1 from ${runs} where ${runs.jobId} = ${run.jobId})`,
          cause: run.cause,
          state: 'running',
          minionId: null,
          leaseExpiresAt: sql`${leaseNow()} + make_interval(secs => ${run.leaseMs / 1000}::double precision)`,
          createdAt: run.now,
          startedAt: run.now,
        })
        .returning();
      return row!;
    },

    /** One chunk of a run's log; a sequence number already stored is ignored. */
    async appendRunLog(runId: number, seq: number, data: string, now: Date): Promise<void> {
      await db
        .insert(logChunks)
        .values({ runId, seq, data, createdAt: now })
        .onConflictDoNothing({ target: [logChunks.runId, logChunks.seq] });
    },

    /**
     * Minions that could take a job with these tags now: active, seen since
     * `seenSince`, with every tag, of the graph's trust (untrusted graphs'
     * jobs go to untrusted minions only, trusted graphs' to trusted ones;
     * restricted minions take only jobs named for them, so they are not
     * counted), and running nothing.
     */
    async idleMinions(
      tags: readonly string[],
      trust: 'trusted' | 'untrusted',
      seenSince: Date,
    ): Promise<number> {
      const [row] = await db
        .select({ count: count() })
        .from(minions)
        .where(
          and(
            eq(minions.state, 'active'),
            eq(minions.trust, trust),
            gte(minions.lastSeenAt, seenSince),
            sql`${minions.tags} @> array[${sql.join(
              tags.map((tag) => sql`${tag}`),
              sql`, `,
            )}]::text[]`,
            sql`not exists (select 1 from ${runs} where ${runs.minionId} = ${minions.id} and ${runs.state} = 'running')`,
          ),
        );
      return row?.count ?? 0;
    },

    /** The chunk jobs of a range job, locked, in creation order. */
    async lockChunks(parentJobId: number): Promise<JobRow[]> {
      return db
        .select()
        .from(jobs)
        .where(eq(jobs.parentJobId, parentJobId))
        .orderBy(asc(jobs.id))
        .for('update');
    },

    /** Whether a chunk of the range job is blocked, pending or running. */
    async hasOpenChunks(parentJobId: number): Promise<boolean> {
      const rows = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(
          and(
            eq(jobs.parentJobId, parentJobId),
            inArray(jobs.state, ['blocked', 'pending', 'running']),
          ),
        )
        .limit(1);
      return rows.length > 0;
    },

    /** New chunk jobs, pending, with the range job's upstream edges; label → id. */
    async insertChunks(input: {
      graphId: number;
      parentJobId: number;
      tagSetId: number;
      cause: RunCause;
      chunks: readonly ChunkWrite[];
      now: Date;
    }): Promise<Map<string, number>> {
      const ids = new Map<string, number>();
      if (input.chunks.length === 0) return ids;
      const rows = await db
        .insert(jobs)
        .values(
          input.chunks.map(({ definition, requestDeadline }) => ({
            graphId: input.graphId,
            label: definition.label,
            kind: definition.kind,
            state: 'pending' as const,
            tagSetId: input.tagSetId,
            priority: definition.priority,
            retries: definition.retries,
            nextCause: input.cause,
            definition,
            pendingSince: input.now,
            requestDeadline,
            parentJobId: input.parentJobId,
            createdAt: input.now,
            updatedAt: input.now,
          })),
        )
        .returning({ id: jobs.id, label: jobs.label });
      for (const row of rows) ids.set(row.label, row.id);
      await db.execute(sql`
        insert into job_dependencies (job_id, depends_on_job_id, condition)
        select c.id, d.depends_on_job_id, d.condition
        from job_dependencies d,
          unnest(array[${sql.join(
            rows.map((row) => sql`${row.id}`),
            sql`, `,
          )}]::bigint[]) as c(id)
        where d.job_id = ${input.parentJobId}`);
      return ids;
    },

    /** Chunk jobs that run again (a new materialisation): pending, with their new spec. */
    async reopenChunk(input: {
      id: number;
      tagSetId: number;
      cause: RunCause;
      chunk: ChunkWrite;
      now: Date;
    }): Promise<void> {
      await db
        .update(jobs)
        .set({
          state: 'pending',
          result: null,
          reason: null,
          tagSetId: input.tagSetId,
          definition: input.chunk.definition,
          pendingSince: input.now,
          requestDeadline: input.chunk.requestDeadline,
          nextCause: input.cause,
          retriesUsed: 0,
          avoidMinionId: null,
          updatedAt: input.now,
        })
        .where(eq(jobs.id, input.id));
    },

    /** Chunks a smaller materialisation left out: inactive, their runs kept as history. */
    async retireChunks(ids: readonly number[], now: Date): Promise<void> {
      if (ids.length === 0) return;
      await db
        .update(jobs)
        .set({
          state: 'inactive',
          result: null,
          reason: null,
          pendingSince: null,
          requestDeadline: null,
          updatedAt: now,
        })
        .where(inArray(jobs.id, [...ids]));
    },

    async insertApproval(jobId: number, approver: string, now: Date): Promise<void> {
      await db.insert(jobApprovals).values({ jobId, approver, approvedAt: now });
    },

    async approvals(jobId: number): Promise<ApprovalRow[]> {
      return db
        .select()
        .from(jobApprovals)
        .where(eq(jobApprovals.jobId, jobId))
        .orderBy(asc(jobApprovals.id));
    },
  };
}
