/**
 * The scheduler's storage: graphs, jobs, dependency edges, tag sets and runs
 * as a queue in the database (STYLE.md 7). Every function is one or a few
 * statements; src/scheduler/ decides what to write, inside `transaction`.
 *
 * Timestamps inside raw `sql` go as ISO strings cast to timestamptz:
 * postgres.js takes no Date there.
 */
import { and, asc, eq, inArray, lte, sql } from 'drizzle-orm';
import type { GraphSpec, JobSpec } from '../lib/graph-spec.js';
import type { TowerDb } from './connection.js';
import { graphs, jobDependencies, jobs, runs, tagSets } from './schema.js';

/** Rows per multi-row statement: well under PostgreSQL's 65,535 parameters. */
const CHUNK = 1000;

const timestamp = (date: Date) => sql`${date.toISOString()}::timestamptz`;
const textArray = (values: readonly string[]) =>
  sql`array[${sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  )}]::text[]`;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export type JobRow = typeof jobs.$inferSelect;
export type RunRow = typeof runs.$inferSelect;
export type GraphRow = typeof graphs.$inferSelect;
export type RunCause = RunRow['cause'];

export type NewGraph = {
  repositoryId: number;
  eventId: number;
  name: string;
  sha: string;
  spec: Omit<GraphSpec, 'jobs'>;
  trust: GraphRow['trust'];
};

export type NewJob = {
  label: string;
  kind: string;
  state: JobRow['state'];
  result: JobRow['result'];
  reason: string | null;
  tagSetKey: string | null;
  priority: number;
  retries: number;
  definition: JobSpec;
  pendingSince: Date | null;
  requestDeadline: Date | null;
};

/** The columns an event changes on a job; every one is written. */
export type JobUpdate = {
  id: number;
  state: JobRow['state'];
  result: JobRow['result'];
  reason: string | null;
  pendingSince: Date | null;
  requestDeadline: Date | null;
  nextCause: RunCause;
  retriesUsed: number;
  avoidMinionId: number | null;
};

export type RunEnd = { jobId: number; result: NonNullable<JobRow['result']>; reason: string | null };

/** postgres.js answers raw queries with an array of rows, PGlite with `{ rows }`. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export type SchedulerQueries = ReturnType<typeof schedulerQueries>;

function schedulerQueries(db: TowerDb) {
  return {
    /** Inserts the graph unless the event already built one of that name; undefined then. */
    async insertGraph(graph: NewGraph, now: Date): Promise<number | undefined> {
      const [row] = await db
        .insert(graphs)
        .values({
          repositoryId: graph.repositoryId,
          eventId: graph.eventId,
          name: graph.name,
          sha: graph.sha,
          specVersion: graph.spec.version,
          spec: graph.spec,
          trust: graph.trust,
          createdAt: now,
        })
        .onConflictDoNothing({ target: [graphs.eventId, graphs.name] })
        .returning({ id: graphs.id });
      return row?.id;
    },

    async graphOfEvent(eventId: number, name: string): Promise<number | undefined> {
      const [row] = await db
        .select({ id: graphs.id })
        .from(graphs)
        .where(and(eq(graphs.eventId, eventId), eq(graphs.name, name)));
      return row?.id;
    },

    /** Tag set key → id, inserting the sets that are new. Sorted keys: concurrent upserts lock in one order. */
    async upsertTagSets(sets: ReadonlyMap<string, readonly string[]>): Promise<Map<string, number>> {
      const keys = [...sets.keys()].sort();
      const ids = new Map<string, number>();
      if (keys.length === 0) return ids;
      for (const part of chunks(keys)) {
        await db
          .insert(tagSets)
          .values(part.map((key) => ({ key, tags: [...sets.get(key)!] })))
          .onConflictDoNothing({ target: tagSets.key });
      }
      for (const part of chunks(keys)) {
        const rows = await db
          .select({ id: tagSets.id, key: tagSets.key })
          .from(tagSets)
          .where(inArray(tagSets.key, part));
        for (const row of rows) ids.set(row.key, row.id);
      }
      return ids;
    },

    /** Multi-row inserts of ~1,000 jobs each; label → id. */
    async insertJobs(
      graphId: number,
      newJobs: readonly NewJob[],
      tagSetIds: ReadonlyMap<string, number>,
      now: Date,
    ): Promise<Map<string, number>> {
      const ids = new Map<string, number>();
      for (const part of chunks(newJobs)) {
        const rows = await db
          .insert(jobs)
          .values(
            part.map((job) => ({
              graphId,
              label: job.label,
              kind: job.kind,
              state: job.state,
              result: job.result,
              reason: job.reason,
              tagSetId: job.tagSetKey === null ? null : tagSetIds.get(job.tagSetKey)!,
              priority: job.priority,
              retries: job.retries,
              definition: job.definition,
              pendingSince: job.pendingSince,
              requestDeadline: job.requestDeadline,
              createdAt: now,
              updatedAt: now,
            })),
          )
          .returning({ id: jobs.id, label: jobs.label });
        for (const row of rows) ids.set(row.label, row.id);
      }
      return ids;
    },

    async insertEdges(
      edges: readonly { jobId: number; dependsOnJobId: number; condition: string[] }[],
    ): Promise<void> {
      for (const part of chunks(edges)) await db.insert(jobDependencies).values(part);
    },

    async countJobs(graphId: number): Promise<number> {
      const [row] = await db
        .select({ count: sql<number>`count(*)::int` })
        .from(jobs)
        .where(eq(jobs.graphId, graphId));
      return row?.count ?? 0;
    },

    /** Locks the graph: events of one graph are applied one at a time. */
    async lockGraph(graphId: number): Promise<GraphRow | undefined> {
      const [row] = await db.select().from(graphs).where(eq(graphs.id, graphId)).for('update');
      return row;
    },

    async graph(graphId: number): Promise<GraphRow | undefined> {
      const [row] = await db.select().from(graphs).where(eq(graphs.id, graphId));
      return row;
    },

    async setGraphState(
      graphId: number,
      state: GraphRow['state'],
      result: string | null,
      finishedAt: Date | null,
    ): Promise<void> {
      await db.update(graphs).set({ state, result, finishedAt }).where(eq(graphs.id, graphId));
    },

    async job(jobId: number): Promise<JobRow | undefined> {
      const [row] = await db.select().from(jobs).where(eq(jobs.id, jobId));
      return row;
    },

    /** The graph's jobs with these labels, locked for the event being applied. */
    async lockJobsByLabel(graphId: number, labels: readonly string[]): Promise<JobRow[]> {
      const out: JobRow[] = [];
      for (const part of chunks(labels)) {
        out.push(
          ...(await db
            .select()
            .from(jobs)
            .where(and(eq(jobs.graphId, graphId), inArray(jobs.label, part)))
            .orderBy(asc(jobs.id))
            .for('update')),
        );
      }
      return out;
    },

    /** Direct dependents of these jobs, locked. */
    async lockDependents(jobIds: readonly number[]): Promise<JobRow[]> {
      const out: JobRow[] = [];
      for (const part of chunks(jobIds)) {
        const dependents = db
          .select({ id: jobDependencies.jobId })
          .from(jobDependencies)
          .where(inArray(jobDependencies.dependsOnJobId, part));
        out.push(
          ...(await db
            .select()
            .from(jobs)
            .where(inArray(jobs.id, dependents))
            .orderBy(asc(jobs.id))
            .for('update')),
        );
      }
      return out;
    },

    /** Every descendant of the job (not the job itself), locked: what a retrigger walks. */
    async lockDescendants(jobId: number): Promise<JobRow[]> {
      const reach = sql`(
        with recursive reach(id) as (
          select ${jobDependencies.jobId} from ${jobDependencies}
          where ${jobDependencies.dependsOnJobId} = ${jobId}
          union
          select d.job_id from job_dependencies d join reach r on d.depends_on_job_id = r.id
        )
        select id from reach
      )`;
      return db
        .select()
        .from(jobs)
        .where(inArray(jobs.id, reach))
        .orderBy(asc(jobs.id))
        .for('update');
    },

    async lockAllJobs(graphId: number): Promise<JobRow[]> {
      return db
        .select()
        .from(jobs)
        .where(eq(jobs.graphId, graphId))
        .orderBy(asc(jobs.id))
        .for('update');
    },

    async graphJobs(graphId: number): Promise<JobRow[]> {
      return db.select().from(jobs).where(eq(jobs.graphId, graphId)).orderBy(asc(jobs.label));
    },

    /** Writes the new columns of many jobs, ~1,000 per statement. */
    async updateJobs(updates: readonly JobUpdate[], now: Date): Promise<void> {
      for (const part of chunks(updates)) {
        const values = sql.join(
          part.map(
            (u) =>
              sql`(${u.id}::bigint, ${u.state}::text, ${u.result}::text, ${u.reason}::text,
                ${u.pendingSince?.toISOString() ?? null}::timestamptz,
                ${u.requestDeadline?.toISOString() ?? null}::timestamptz,
                ${u.nextCause}::text, ${u.retriesUsed}::smallint, ${u.avoidMinionId}::bigint)`,
          ),
          sql`, `,
        );
        await db.execute(sql`
          update ${jobs} set
            state = v.state, result = v.result, reason = v.reason,
            pending_since = v.pending_since, request_deadline = v.request_deadline,
            next_cause = v.next_cause, retries_used = v.retries_used,
            avoid_minion_id = v.avoid_minion_id, updated_at = ${timestamp(now)}
          from (values ${values}) as v(id, state, result, reason, pending_since,
            request_deadline, next_cause, retries_used, avoid_minion_id)
          where ${jobs.id} = v.id`);
      }
    },

    /** Ends the running runs of jobs that an event ended (cancel, timeout). */
    async endRunningRuns(ends: readonly RunEnd[], now: Date): Promise<void> {
      for (const part of chunks(ends)) {
        const values = sql.join(
          part.map((e) => sql`(${e.jobId}::bigint, ${e.result}::text, ${e.reason}::text)`),
          sql`, `,
        );
        await db.execute(sql`
          update ${runs} set state = 'done', result = v.result, reason = v.reason,
            finished_at = ${timestamp(now)}
          from (values ${values}) as v(job_id, result, reason)
          where ${runs.jobId} = v.job_id and ${runs.state} = 'running'`);
      }
    },

    /**
     * The claim: among the tag sets whose tags the minion has (one containment
     * test per distinct set), the highest-priority, oldest pending command job,
     * locked with SKIP LOCKED so that concurrent claims take different jobs.
     * A job to retry elsewhere comes last for the minion that failed it.
     */
    async lockClaimable(minionId: number, tags: readonly string[]): Promise<JobRow | undefined> {
      const eligible = db
        .select({ id: tagSets.id })
        .from(tagSets)
        .where(sql`${tagSets.tags} <@ ${textArray(tags)}`);
      const [row] = await db
        .select()
        .from(jobs)
        .where(
          and(
            eq(jobs.state, 'pending'),
            // Only command jobs run on minions; the other kinds have no tag set either.
            eq(jobs.kind, 'command'),
            inArray(jobs.tagSetId, eligible),
          ),
        )
        .orderBy(
          sql`${jobs.avoidMinionId} is not distinct from ${minionId}`,
          sql`${jobs.priority} desc`,
          asc(jobs.pendingSince),
          asc(jobs.id),
        )
        .limit(1)
        .for('update', { skipLocked: true });
      return row;
    },

    async startJob(jobId: number, now: Date): Promise<void> {
      await db
        .update(jobs)
        .set({ state: 'running', avoidMinionId: null, updatedAt: now })
        .where(eq(jobs.id, jobId));
    },

    async insertRun(run: {
      jobId: number;
      cause: RunCause;
      minionId: number;
      now: Date;
      leaseExpiresAt: Date;
      runtimeDeadline: Date | null;
      idleDeadline: Date | null;
    }): Promise<RunRow> {
      const [row] = await db
        .insert(runs)
        .values({
          jobId: run.jobId,
          attempt: sql`(select coalesce(max(${runs.attempt}), 0) + 1 from ${runs} where ${runs.jobId} = ${run.jobId})`,
          cause: run.cause,
          state: 'running',
          minionId: run.minionId,
          leaseExpiresAt: run.leaseExpiresAt,
          createdAt: run.now,
          startedAt: run.now,
          runtimeDeadline: run.runtimeDeadline,
          idleDeadline: run.idleDeadline,
        })
        .returning();
      return row!;
    },

    async run(runId: number): Promise<(RunRow & { graphId: number }) | undefined> {
      const [row] = await db
        .select({ run: runs, graphId: jobs.graphId })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .where(eq(runs.id, runId));
      return row && { ...row.run, graphId: row.graphId };
    },

    async lockRun(runId: number): Promise<RunRow | undefined> {
      const [row] = await db.select().from(runs).where(eq(runs.id, runId)).for('update');
      return row;
    },

    async endRun(
      runId: number,
      end: { result: NonNullable<RunRow['result']>; reason: string | null; exitCode: number | null },
      now: Date,
    ): Promise<void> {
      await db
        .update(runs)
        .set({ state: 'done', ...end, finishedAt: now })
        .where(eq(runs.id, runId));
    },

    /** Extends the lease of the minion's running run whose job still runs; false otherwise. */
    async extendLease(runId: number, minionId: number, until: Date): Promise<boolean> {
      const rows = await db
        .update(runs)
        .set({ leaseExpiresAt: until })
        .where(
          and(
            eq(runs.id, runId),
            eq(runs.minionId, minionId),
            eq(runs.state, 'running'),
            sql`exists (select 1 from ${jobs} where ${jobs.id} = ${runs.jobId} and ${jobs.state} = 'running')`,
          ),
        )
        .returning({ id: runs.id });
      return rows.length === 1;
    },

    /** Records output on the minion's running run and moves its idle deadline; false otherwise. */
    async recordOutput(runId: number, minionId: number, now: Date): Promise<boolean> {
      const rows = rowsOf<{ id: number }>(
        await db.execute(sql`
          update ${runs} set last_output_at = ${timestamp(now)},
            idle_deadline = ${timestamp(now)}
              + make_interval(secs => (j.definition ->> 'idleTimeout')::double precision)
          from ${jobs} j
          where j.id = ${runs.jobId} and ${runs.id} = ${runId} and ${runs.minionId} = ${minionId}
            and ${runs.state} = 'running' and j.state = 'running'
          returning ${runs.id}`),
      );
      return rows.length === 1;
    },

    /** Running runs whose deadline column has passed. */
    async overdueRuns(
      column: 'leaseExpiresAt' | 'runtimeDeadline' | 'idleDeadline',
      now: Date,
    ): Promise<number[]> {
      const rows = await db
        .select({ id: runs.id })
        .from(runs)
        .where(and(eq(runs.state, 'running'), lte(runs[column], now)))
        .orderBy(asc(runs.id));
      return rows.map((row) => row.id);
    },

    /** Pending jobs past their request deadline. */
    async overduePendingJobs(now: Date): Promise<number[]> {
      const rows = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(and(eq(jobs.state, 'pending'), lte(jobs.requestDeadline, now)))
        .orderBy(asc(jobs.id));
      return rows.map((row) => row.id);
    },

    /** Whether a job of the graph is blocked, pending or running. */
    async hasOpenJobs(graphId: number): Promise<boolean> {
      const rows = await db
        .select({ id: jobs.id })
        .from(jobs)
        .where(
          and(eq(jobs.graphId, graphId), inArray(jobs.state, ['blocked', 'pending', 'running'])),
        )
        .limit(1);
      return rows.length > 0;
    },

    async graphRuns(graphId: number): Promise<RunRow[]> {
      const rows = await db
        .select({ run: runs })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .where(eq(jobs.graphId, graphId))
        .orderBy(asc(runs.jobId), asc(runs.attempt));
      return rows.map((row) => row.run);
    },
  };
}

export type SchedulerStore = SchedulerQueries & {
  /** Runs `work` in one transaction, with queries bound to it. */
  transaction<T>(work: (queries: SchedulerQueries) => Promise<T>): Promise<T>;
};

export function createSchedulerStore(db: TowerDb): SchedulerStore {
  return {
    ...schedulerQueries(db),
    transaction: (work) => db.transaction((tx) => work(schedulerQueries(tx))),
  };
}
