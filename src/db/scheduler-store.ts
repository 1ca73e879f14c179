/**
 * The scheduler's storage: graphs, jobs, dependency edges, tag sets and runs
 * as a queue in the database. Every function is one or a few
 * statements; src/scheduler/ decides what to write, inside `transaction`.
 *
 * Timestamps inside raw `sql` go as ISO strings cast to timestamptz:
 * postgres.js takes no Date there.
 *
 * Leases are written and compared in the database's time (`now()`), not a
 * replica's: replicas whose clocks disagree still agree on when a lease
 * lapses. Tests that move time by hand give a clock instead (`LeaseClock`).
 */
import { and, asc, eq, inArray, lte, or, sql, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Clock } from '../lib/clock.js';
import type { GraphSpec, JobSpec } from '../lib/graph-spec.js';
import type { TowerDb } from './connection.js';
import {
  graphs,
  jobDependencies,
  jobs,
  leaseWatch,
  runs,
  tagSets,
  type minions,
} from './schema.js';
import { serverJobQueries } from './server-job-store.js';

/** Rows per multi-row statement: well under PostgreSQL's 65,535 parameters. */
const CHUNK = 1000;

/** Tag set keys of untrusted graphs' queues start with this (a tag cannot contain ":"). */
export const UNTRUSTED_PREFIX = 'untrusted:';

/** A warm minion not seen for this long is not waiting for its jobs: others may take them. */
const WARM_SEEN_SECONDS = 60;

const timestamp = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/** Where lease times come from: the database's clock, or a clock a test moves by hand. */
export type LeaseClock = 'database' | Clock;

/** "Now" for leases, as SQL. */
const leaseNow = (clock: LeaseClock): SQL =>
  clock === 'database' ? sql`now()` : timestamp(clock.now());

const seconds = (value: number): SQL => sql`make_interval(secs => ${value}::double precision)`;

/** The run's minion is retired: its revoked credential can renew nothing. */
const ofRetiredMinion = sql`exists (
  select 1 from minions m where m.id = ${runs.minionId} and m.state = 'retired')`;

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
  protectedBranch: boolean;
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

export type RunEnd = {
  jobId: number;
  result: NonNullable<JobRow['result']>;
  reason: string | null;
};

export type MinionState = (typeof minions.$inferSelect)['state'];

/** A job a claim took: its new run, and what the minion needs to know about it. */
export type ClaimedJob = {
  runId: number;
  attempt: number;
  cause: RunCause;
  jobId: number;
  graphId: number;
  label: string;
  definition: JobSpec;
  sha: string;
  repositoryId: number;
  /** In the database's time (or the test's lease clock). */
  leaseExpiresAt: Date;
};

/**
 * One claim statement's answer. `none`: nothing could be locked; `exhausted`
 * when every eligible pending job was among the candidates (none is left
 * deeper in a queue), so looking again with more candidates is pointless.
 */
export type ClaimAttempt =
  | { kind: 'claimed'; job: ClaimedJob }
  | { kind: 'none'; exhausted: boolean }
  | { kind: 'inactive'; state: MinionState | undefined };

/** postgres.js answers raw queries with an array of rows, PGlite with `{ rows }`. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

const dialect = new PgDialect();

/**
 * A raw statement as a prepared statement: PostgreSQL parses and plans it
 * once per connection instead of at every call (`db.execute` never
 * prepares). The claim runs thousands of times a second; planning it each
 * time cost more than running it. Builder queries on the hot paths (claim,
 * report) use `.prepare()` for the same reason; statements whose text
 * varies with their row count (multi-row writes, IN lists) are not
 * prepared, so that each connection keeps a bounded set of plans.
 */
async function executePrepared<T>(db: TowerDb, name: string, query: SQL): Promise<T[]> {
  const prepared = db._.session.prepareQuery(dialect.sqlToQuery(query), undefined, name, false);
  return rowsOf<T>(await prepared.execute());
}

export type SchedulerQueries = ReturnType<typeof schedulerQueries>;

function schedulerQueries(db: TowerDb, leaseClock: LeaseClock) {
  return {
    // Timers, notify runs, approvals and range chunks (src/scheduler/server-jobs.ts).
    ...serverJobQueries(db, () => leaseNow(leaseClock)),
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
          // Only a push can be a protected branch's (restricted minions take nothing
          // else): checked here, once, so that every claim need not join the event.
          protectedBranch: graph.protectedBranch
            ? sql`exists (select 1 from events e where e.id = ${graph.eventId} and e.type = 'push')`
            : false,
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
    async upsertTagSets(
      sets: ReadonlyMap<string, readonly string[]>,
    ): Promise<Map<string, number>> {
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
      const [row] = await db
        .select()
        .from(graphs)
        .where(eq(graphs.id, graphId))
        .for('update')
        .prepare('lock_graph')
        .execute();
      return row;
    },

    async graph(graphId: number): Promise<GraphRow | undefined> {
      const [row] = await db
        .select()
        .from(graphs)
        .where(eq(graphs.id, graphId))
        .prepare('graph')
        .execute();
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
      const [row] = await db.select().from(jobs).where(eq(jobs.id, jobId)).prepare('job').execute();
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

    /**
     * The job, its upstreams, its dependents and their upstreams, locked, in
     * one statement: everything a job's completion reads (src/scheduler/reach.ts).
     */
    async lockNeighbourhood(jobId: number): Promise<JobRow[]> {
      // Arrays rather than IN (subquery): the plan stays on the indexes whatever the statistics say.
      const dependents = sql`array(select job_id from job_dependencies where depends_on_job_id = ${jobId})`;
      const ids = sql`array(
        select ${jobId}::bigint
        union all select unnest(${dependents})
        union all select depends_on_job_id from job_dependencies where job_id = ${jobId}
        union all select depends_on_job_id from job_dependencies where job_id = any(${dependents})
      )`;
      return db
        .select()
        .from(jobs)
        .where(sql`${jobs.id} = any(${ids})`)
        .orderBy(asc(jobs.id))
        .for('update')
        .prepare('lock_neighbourhood')
        .execute();
    },

    /** Direct dependents of these jobs, locked. */
    async lockDependents(jobIds: readonly number[]): Promise<JobRow[]> {
      const out: JobRow[] = [];
      for (const part of chunks(jobIds)) {
        const upstreams = sql`array[${sql.join(
          part.map((id) => sql`${id}::bigint`),
          sql`, `,
        )}]`;
        out.push(
          ...(await db
            .select()
            .from(jobs)
            .where(
              sql`${jobs.id} = any(array(select job_id from job_dependencies where depends_on_job_id = any(${upstreams})))`,
            )
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

    /**
     * What a reader sees of the graph's jobs: no definitions but the chunk.
     * In label order ("C" collation, as compareLabels orders) from after
     * `after`, at most `limit`; every job without a limit.
     */
    async graphJobViews(graphId: number, page: { after?: string; limit?: number } = {}) {
      const label = sql`${jobs.label} collate "C"`;
      const query = db
        .select({
          id: jobs.id,
          label: jobs.label,
          kind: jobs.kind,
          state: jobs.state,
          result: jobs.result,
          reason: jobs.reason,
          priority: jobs.priority,
          retries: jobs.retries,
          retriesUsed: jobs.retriesUsed,
          pendingSince: jobs.pendingSince,
          parentJobId: jobs.parentJobId,
          chunk: sql<JobSpec['chunk']>`${jobs.definition} -> 'chunk'`,
          source: sql<JobSpec['source']>`${jobs.definition} -> 'source'`,
          dueAt: jobs.dueAt,
        })
        .from(jobs)
        .where(
          and(
            eq(jobs.graphId, graphId),
            page.after === undefined ? undefined : sql`${label} > ${page.after}`,
          ),
        )
        .orderBy(label);
      return page.limit === undefined ? query : query.limit(page.limit);
    },

    /** How many of the graph's jobs are in each state, and done with each result. */
    async graphCounts(graphId: number) {
      return db
        .select({ state: jobs.state, result: jobs.result, count: sql<number>`count(*)::int` })
        .from(jobs)
        .where(eq(jobs.graphId, graphId))
        .groupBy(jobs.state, jobs.result);
    },

    /** The runs of these jobs, by job and attempt. */
    async runsOfJobs(jobIds: readonly number[]): Promise<RunRow[]> {
      if (jobIds.length === 0) return [];
      return db
        .select()
        .from(runs)
        .where(inArray(runs.jobId, [...jobIds]))
        .orderBy(asc(runs.jobId), asc(runs.attempt));
    },

    async graphJobs(graphId: number): Promise<JobRow[]> {
      return db.select().from(jobs).where(eq(jobs.graphId, graphId)).orderBy(asc(jobs.label));
    },

    /**
     * Writes the new columns of many jobs of one graph, ~1,000 per
     * statement, and counts the change on the graph (whose row the caller
     * has locked): check runs are published when `changes` moves.
     */
    async updateJobs(graphId: number, updates: readonly JobUpdate[], now: Date): Promise<void> {
      for (const [i, part] of chunks(updates).entries()) {
        const bump =
          i === 0
            ? sql`with changed as (update ${graphs} set changes = changes + 1 where id = ${graphId}) `
            : sql``;
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
        await db.execute(sql`${bump}
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
     * One claim, in one statement (docs/performance.md
     * shows its plan). The minion, if active, is eligible for the tag sets
     * whose tags it has, of its trust's queues (untrusted minions take only
     * untrusted graphs' sets, the others only trusted ones): one containment
     * test per distinct set. From each set, the best `perSet` pending jobs
     * in the order of jobs_claim_idx, read without locks; a restricted
     * minion's jobs must also be named in its job labels and come from a push to a
     * protected branch. Then the preferences: a job whose retry
     * should avoid this minion comes last; among the first `preferAmong` of
     * the rest it prefers its warm jobs (it ran the job of that repository
     * successfully last), then jobs no idle minion is warm for; then priority
     * and age. The first candidate that is still pending and not locked by
     * another claim is locked (SKIP LOCKED), started, and given its run,
     * whose lease runs `leaseSeconds` from the database's now.
     */
    async claimNext(input: {
      minionId: number;
      now: Date;
      leaseSeconds: number;
      perSet: number;
      preferAmong: number;
      /** SHA-256 of the run's read token, or null. */
      readTokenHash: string | null;
    }): Promise<ClaimAttempt> {
      const { minionId, perSet, preferAmong } = input;
      const now = timestamp(input.now);
      const rows = await executePrepared<{
        active: boolean;
        minion_state: MinionState | null;
        fullest: number | string;
        run_id: number | string | null;
        attempt: number | null;
        cause: RunCause | null;
        job_id: number | string | null;
        graph_id: number | string | null;
        label: string | null;
        definition: JobSpec | null;
        sha: string | null;
        repository_id: number | string | null;
        lease_expires_at: Date | string | null;
      }>(
        db,
        'claim_next',
        sql`
          with me as (
            select id, tags, trust, job_labels from minions
            where id = ${minionId} and state = 'active'
          ),
          eligible as (
            select ts.id, me.trust, me.job_labels from tag_sets ts cross join me
            where ts.tags <@ me.tags
              and starts_with(ts.key, ${UNTRUSTED_PREFIX}) = (me.trust = 'untrusted')
          ),
          candidates as (
            select e.id as tag_set_id, c.* from eligible e cross join lateral (
              select j.id, j.graph_id, j.label, j.priority, j.pending_since,
                j.avoid_minion_id is not distinct from ${minionId} as avoided
              from jobs j
              where j.tag_set_id = e.id and j.state = 'pending' and j.kind = 'command'
                and (e.trust <> 'restricted' or (j.label = any(e.job_labels) and exists (
                  select 1 from graphs g where g.id = j.graph_id and g.protected_branch)))
              order by j.priority desc nulls last, j.pending_since
              limit ${perSet}
            ) c
          ),
          ranked as (
            select c.*, row_number() over (
              partition by c.avoided order by c.priority desc, c.pending_since, c.id) as age
            from candidates c
          ),
          ordered as (
            select r.id, row_number() over (order by r.avoided, r.priority desc,
              case when r.age > ${preferAmong} then 3 else (
                select case
                  when w.minion_id is null then 1
                  when w.minion_id = ${minionId} then 0
                  when exists (
                    select 1 from minions wm
                    where wm.id = w.minion_id and wm.state = 'active'
                      and wm.last_seen_at > ${now} - make_interval(secs => ${WARM_SEEN_SECONDS})
                      and not exists (
                        select 1 from runs busy
                        where busy.minion_id = wm.id and busy.state = 'running')
                  ) then 2
                  else 1
                end
                from graphs g left join warm_minions w
                  on w.repository_id = g.repository_id and w.label = r.label
                where g.id = r.graph_id
              ) end,
              r.pending_since, r.id) as ord
            from ranked r
          ),
          locked as (
            select j.id, j.graph_id, j.label, j.next_cause, j.definition
            from ordered o join jobs j on j.id = o.id
            where j.state = 'pending'
            order by o.ord
            limit 1
            for update of j skip locked
          ),
          started as (
            update jobs set state = 'running', avoid_minion_id = null, updated_at = ${now}
            from locked where jobs.id = locked.id
            returning jobs.id
          ),
          inserted as (
            insert into runs (job_id, attempt, cause, state, minion_id, lease_expires_at,
              created_at, started_at, runtime_deadline, idle_deadline, read_token_hash)
            select l.id,
              coalesce((select max(r.attempt) from runs r where r.job_id = l.id), 0) + 1,
              l.next_cause, 'running', ${minionId},
              ${leaseNow(leaseClock)} + ${seconds(input.leaseSeconds)}, ${now}, ${now},
              ${now} + make_interval(secs => (l.definition ->> 'maxRuntime')::double precision),
              ${now} + make_interval(secs => (l.definition ->> 'idleTimeout')::double precision),
              ${input.readTokenHash}
            from locked l join started s on s.id = l.id
            returning id, job_id, attempt, cause, lease_expires_at
          )
          select exists (select 1 from me) as active,
            (select state from minions where id = ${minionId}) as minion_state,
            (select coalesce(max(n), 0) from (
              select count(*) as n from candidates group by tag_set_id) per_set) as fullest,
            i.id as run_id, i.attempt, i.cause, l.id as job_id, l.graph_id, l.label,
            l.definition, g.sha, g.repository_id, i.lease_expires_at
          from (select 1) as one
            left join inserted i on true
            left join locked l on l.id = i.job_id
            left join graphs g on g.id = l.graph_id`,
      );
      const row = rows[0]!;
      if (!row.active) return { kind: 'inactive', state: row.minion_state ?? undefined };
      if (row.run_id === null) {
        return { kind: 'none', exhausted: Number(row.fullest) < perSet };
      }
      return {
        kind: 'claimed',
        job: {
          runId: Number(row.run_id),
          attempt: row.attempt!,
          cause: row.cause!,
          jobId: Number(row.job_id),
          graphId: Number(row.graph_id),
          label: row.label!,
          definition: row.definition!,
          sha: row.sha!,
          repositoryId: Number(row.repository_id),
          leaseExpiresAt: new Date(row.lease_expires_at!),
        },
      };
    },

    /** Keys of these tag sets (tag sets never change, so callers may cache them). */
    async tagSetKeys(ids: readonly number[]): Promise<Map<number, string>> {
      const keys = new Map<number, string>();
      if (ids.length === 0) return keys;
      const rows = await db
        .select({ id: tagSets.id, key: tagSets.key })
        .from(tagSets)
        .where(inArray(tagSets.id, [...ids]));
      for (const row of rows) keys.set(row.id, row.key);
      return keys;
    },

    /**
     * Counts the minion's run outcome, in one statement: an exception adds
     * one to its consecutive exceptions, anything else resets them, and an
     * active minion reaching `quarantineAfter` is quarantined. A success
     * (`warmFor` given) makes it the warm minion of that job of the
     * repository: claims prefer it for the job (warm caches).
     */
    async recordMinionOutcome(input: {
      minionId: number;
      exception: boolean;
      quarantineAfter: number;
      warmFor: { repositoryId: number; label: string } | null;
      now: Date;
    }): Promise<void> {
      const { minionId, exception, quarantineAfter, warmFor } = input;
      const now = timestamp(input.now);
      await executePrepared(
        db,
        'minion_outcome',
        sql`
          with outcome as (
            update minions set
              consecutive_exceptions = case when ${exception}::boolean
                then consecutive_exceptions + 1 else 0 end,
              state = case when state = 'active' and ${exception}::boolean
                and consecutive_exceptions + 1 >= ${quarantineAfter}::int
                then 'quarantined' else state end,
              quarantined_at = case when state = 'active' and ${exception}::boolean
                and consecutive_exceptions + 1 >= ${quarantineAfter}::int
                then ${now} else quarantined_at end
            where id = ${minionId}
          ),
          warm as (
            insert into warm_minions (repository_id, label, minion_id, updated_at)
            select ${warmFor?.repositoryId ?? null}::bigint, ${warmFor?.label ?? null}::text,
              ${minionId}::bigint, ${now}
            where ${warmFor !== null}::boolean
            on conflict (repository_id, label)
              do update set minion_id = excluded.minion_id, updated_at = excluded.updated_at
          )
          select 1`,
      );
    },

    async run(runId: number): Promise<(RunRow & { graphId: number }) | undefined> {
      const [row] = await db
        .select({ run: runs, graphId: jobs.graphId })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .where(eq(runs.id, runId))
        .prepare('run')
        .execute();
      return row && { ...row.run, graphId: row.graphId };
    },

    async lockRun(runId: number): Promise<RunRow | undefined> {
      const [row] = await db
        .select()
        .from(runs)
        .where(eq(runs.id, runId))
        .for('update')
        .prepare('lock_run')
        .execute();
      return row;
    },

    /**
     * Ends the run if it is running (and, when `minionId` is given, is that
     * minion's; when `lapsed`, only if its lease has lapsed still, or its
     * minion is retired: a heartbeat may have come since it was listed);
     * its job and minion then, or undefined when it was not.
     */
    async endRunningRun(
      runId: number,
      minionId: number | undefined,
      end: {
        result: NonNullable<RunRow['result']>;
        reason: string | null;
        exitCode: number | null;
      },
      now: Date,
      lapsed = false,
    ): Promise<{ jobId: number; minionId: number | null } | undefined> {
      const [row] = await db
        .update(runs)
        .set({ state: 'done', ...end, finishedAt: now })
        .where(
          and(
            eq(runs.id, runId),
            eq(runs.state, 'running'),
            sql`(${minionId ?? null}::bigint is null or ${runs.minionId} = ${minionId ?? null}::bigint)`,
            lapsed
              ? or(lte(runs.leaseExpiresAt, leaseNow(leaseClock)), ofRetiredMinion)
              : undefined,
          ),
        )
        .returning({ jobId: runs.jobId, minionId: runs.minionId })
        .prepare(lapsed ? 'end_lapsed_run' : 'end_running_run')
        .execute();
      return row;
    },

    /**
     * Extends the lease of the minion's running run whose job still runs to
     * `leaseSeconds` from the database's now; the new expiry, or undefined.
     */
    async extendLease(
      runId: number,
      minionId: number,
      leaseSeconds: number,
    ): Promise<Date | undefined> {
      const [row] = await db
        .update(runs)
        .set({ leaseExpiresAt: sql`${leaseNow(leaseClock)} + ${seconds(leaseSeconds)}` })
        .where(
          and(
            eq(runs.id, runId),
            eq(runs.minionId, minionId),
            eq(runs.state, 'running'),
            sql`exists (select 1 from ${jobs} where ${jobs.id} = ${runs.jobId} and ${jobs.state} = 'running')`,
          ),
        )
        .returning({ leaseExpiresAt: runs.leaseExpiresAt });
      return row?.leaseExpiresAt ?? undefined;
    },

    /**
     * Records a maintenance pass: the database answers now. The stretch it
     * has answered without a break restarts (`upSince` = now) after an
     * outage: when the caller says so (its own passes failed), or when no
     * pass of any replica came for more than `gapSeconds`. Whether it
     * restarted, and since when the database is up.
     */
    async watchLeases(input: {
      outage: boolean;
      gapSeconds: number;
    }): Promise<{ restarted: boolean; upSince: Date }> {
      const now = leaseNow(leaseClock);
      const [row] = await db
        .insert(leaseWatch)
        .values({ id: 1, seenAt: now, upSince: now })
        .onConflictDoUpdate({
          target: leaseWatch.id,
          set: {
            upSince: sql`case when ${input.outage}::boolean
              or ${leaseWatch.seenAt} < ${now} - ${seconds(input.gapSeconds)}
              then ${now} else ${leaseWatch.upSince} end`,
            seenAt: sql`greatest(${leaseWatch.seenAt}, ${now})`,
          },
        })
        .returning({ upSince: leaseWatch.upSince, seenAt: leaseWatch.seenAt });
      return { restarted: row!.upSince.getTime() === row!.seenAt.getTime(), upSince: row!.upSince };
    },

    /**
     * Running runs whose lease has lapsed, once the database has been up for
     * `graceSeconds` since its last outage (lease_watch): until then
     * minions cut off by the outage may still heartbeat. Runs of retired
     * minions at once: a revoked credential can renew nothing.
     */
    async lapsedLeases(graceSeconds: number): Promise<number[]> {
      const now = leaseNow(leaseClock);
      const settled =
        graceSeconds > 0
          ? sql`not exists (select 1 from ${leaseWatch}
              where ${leaseWatch.upSince} > ${now} - ${seconds(graceSeconds)})`
          : undefined;
      const rows = await db
        .select({ id: runs.id })
        .from(runs)
        .where(
          and(
            eq(runs.state, 'running'),
            or(and(lte(runs.leaseExpiresAt, now), settled), ofRetiredMinion),
          ),
        )
        .orderBy(asc(runs.id));
      return rows.map((row) => row.id);
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
    async overdueRuns(column: 'runtimeDeadline' | 'idleDeadline', now: Date): Promise<number[]> {
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
        .limit(1)
        .prepare('has_open_jobs')
        .execute();
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

/** `leaseClock`: the database's clock unless a test moves time by hand. */
export function createSchedulerStore(
  db: TowerDb,
  leaseClock: LeaseClock = 'database',
): SchedulerStore {
  return {
    ...schedulerQueries(db, leaseClock),
    transaction: (work) => db.transaction((tx) => work(schedulerQueries(tx, leaseClock))),
  };
}
