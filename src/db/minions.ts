/**
 * The minion protocol's storage: minions, log chunks, artifact rows, and the
 * read-side views of runs that the protocol and the read API answer with.
 * src/minions/ decides what to write; each function is one statement, or
 * one transaction where a check must hold while it writes.
 */
import { and, asc, count, desc, eq, gt, inArray, ne, or, sql } from 'drizzle-orm';
import type { JobSpec } from '../lib/graph-spec.js';
import type { TowerDb } from './connection.js';
import { UNTRUSTED_PREFIX } from './scheduler-store.js';
import {
  artifacts,
  graphs,
  jobDependencies,
  jobs,
  logChunks,
  minions,
  runs,
  tagSets,
} from './schema.js';

export type MinionRow = typeof minions.$inferSelect;
export type ArtifactRow = typeof artifacts.$inferSelect;
export type LogChunkRow = Pick<typeof logChunks.$inferSelect, 'seq' | 'data'>;

/** A run with what the protocol tells about it: its job, graph, commit and repository. */
export type RunDetail = {
  id: number;
  jobId: number;
  graphId: number;
  label: string;
  attempt: number;
  cause: (typeof runs.$inferSelect)['cause'];
  state: (typeof runs.$inferSelect)['state'];
  result: (typeof runs.$inferSelect)['result'];
  reason: string | null;
  exitCode: number | null;
  minionId: number | null;
  leaseExpiresAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  sha: string;
  repositoryId: number;
  job: JobSpec;
};

export function createMinionQueries(db: TowerDb) {
  return {
    async insertMinion(minion: {
      name: string;
      tags: string[];
      trust: MinionRow['trust'];
      /** Restricted minions: the job labels they take; null otherwise. */
      jobLabels?: string[] | null;
      credentialHash: string;
      now: Date;
    }): Promise<number> {
      const [row] = await db
        .insert(minions)
        .values({
          name: minion.name,
          tags: minion.tags,
          trust: minion.trust,
          jobLabels: minion.jobLabels ?? null,
          credentialHash: minion.credentialHash,
          registeredAt: minion.now,
        })
        .returning({ id: minions.id });
      return row!.id;
    },

    /** The minion holding this credential; marks it seen now. */
    async touchMinionByCredential(hash: string, now: Date): Promise<MinionRow | undefined> {
      const [row] = await db
        .update(minions)
        .set({ lastSeenAt: now })
        .where(eq(minions.credentialHash, hash))
        .returning();
      return row;
    },

    /** Minions by id: every one, or at most `limit` after the id `after`. */
    async listMinions(page: { after?: number; limit?: number } = {}): Promise<MinionRow[]> {
      const query = db
        .select()
        .from(minions)
        .where(page.after === undefined ? undefined : gt(minions.id, page.after))
        .orderBy(asc(minions.id));
      return page.limit === undefined ? query : query.limit(page.limit);
    },

    /**
     * A quarantined (or active) minion back to active with no exceptions
     * counted; a retired one stays retired. The row after, or undefined.
     */
    async releaseMinion(minionId: number): Promise<MinionRow | undefined> {
      await db
        .update(minions)
        .set({ state: 'active', consecutiveExceptions: 0, quarantinedAt: null })
        .where(and(eq(minions.id, minionId), ne(minions.state, 'retired')));
      const [row] = await db.select().from(minions).where(eq(minions.id, minionId));
      return row;
    },

    /**
     * Retires the minion for good: its credential is refused from now on,
     * and its running runs count as lapsed (src/db/scheduler-store.ts
     * `lapsedLeases`). The row after, or undefined.
     */
    async retireMinion(minionId: number): Promise<MinionRow | undefined> {
      const [row] = await db
        .update(minions)
        .set({ state: 'retired' })
        .where(eq(minions.id, minionId))
        .returning();
      return row;
    },

    async runDetail(runId: number): Promise<RunDetail | undefined> {
      const [row] = await db
        .select({
          id: runs.id,
          jobId: runs.jobId,
          graphId: jobs.graphId,
          label: jobs.label,
          attempt: runs.attempt,
          cause: runs.cause,
          state: runs.state,
          result: runs.result,
          reason: runs.reason,
          exitCode: runs.exitCode,
          minionId: runs.minionId,
          leaseExpiresAt: runs.leaseExpiresAt,
          createdAt: runs.createdAt,
          startedAt: runs.startedAt,
          finishedAt: runs.finishedAt,
          sha: graphs.sha,
          repositoryId: graphs.repositoryId,
          job: jobs.definition,
        })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .innerJoin(graphs, eq(graphs.id, jobs.graphId))
        .where(eq(runs.id, runId));
      return row;
    },

    /** Whether the run is running on this minion: logs and artifacts are taken only then. */
    async isRunningOn(runId: number, minionId: number): Promise<boolean> {
      const rows = await db
        .select({ id: runs.id })
        .from(runs)
        .where(and(eq(runs.id, runId), eq(runs.minionId, minionId), eq(runs.state, 'running')));
      return rows.length === 1;
    },

    /**
     * For each upstream of the job: its latest finished run; for a range job,
     * each of its chunks'. Upstreams without one are left out.
     */
    async upstreamRuns(jobId: number): Promise<{ label: string; runId: number }[]> {
      return db
        .selectDistinctOn([jobs.id], {
          label: jobs.label,
          runId: runs.id,
        })
        .from(jobDependencies)
        .innerJoin(
          jobs,
          or(
            eq(jobs.id, jobDependencies.dependsOnJobId),
            // A range job never runs: its current chunks stand for it (src/scheduler/server-jobs.ts).
            and(eq(jobs.parentJobId, jobDependencies.dependsOnJobId), ne(jobs.state, 'inactive')),
          ),
        )
        .innerJoin(runs, and(eq(runs.jobId, jobs.id), eq(runs.state, 'done')))
        .where(eq(jobDependencies.jobId, jobId))
        .orderBy(jobs.id, desc(runs.attempt));
    },

    /**
     * Stores a chunk once and counts its bytes in `runs.log_bytes`, in one
     * transaction holding the run's row, so that appends are counted one at
     * a time: `stored`; `duplicate` (the sequence number is stored already:
     * nothing is counted again); `full` (the log would pass `limit` bytes);
     * `not-running` (the run is not running on this minion).
     */
    async appendLogChunk(chunk: {
      runId: number;
      minionId: number;
      seq: number;
      data: string;
      bytes: number;
      limit: number;
      now: Date;
    }): Promise<'stored' | 'duplicate' | 'full' | 'not-running'> {
      return db.transaction(async (tx) => {
        const [run] = await tx
          .select({ logBytes: runs.logBytes })
          .from(runs)
          .where(
            and(
              eq(runs.id, chunk.runId),
              eq(runs.minionId, chunk.minionId),
              eq(runs.state, 'running'),
            ),
          )
          .for('update');
        if (!run) return 'not-running';
        const [stored] = await tx
          .select({ seq: logChunks.seq })
          .from(logChunks)
          .where(and(eq(logChunks.runId, chunk.runId), eq(logChunks.seq, chunk.seq)));
        if (stored) return 'duplicate';
        if (run.logBytes + chunk.bytes > chunk.limit) return 'full';
        await tx
          .insert(logChunks)
          .values({ runId: chunk.runId, seq: chunk.seq, data: chunk.data, createdAt: chunk.now });
        await tx
          .update(runs)
          .set({ logBytes: sql`${runs.logBytes} + ${chunk.bytes}` })
          .where(eq(runs.id, chunk.runId));
        return 'stored';
      });
    },

    /** At most `limit` of the run's chunks after `afterSeq`, in order: a log is read a page at a time. */
    async logChunks(runId: number, afterSeq: number, limit: number): Promise<LogChunkRow[]> {
      return db
        .select({ seq: logChunks.seq, data: logChunks.data })
        .from(logChunks)
        .where(and(eq(logChunks.runId, runId), gt(logChunks.seq, afterSeq)))
        .orderBy(asc(logChunks.seq))
        .limit(limit);
    },

    /**
     * The beginning and the end of a run's log, for a check run, without
     * reading what lies between: the first and last `chunks` chunks, and
     * the whole log's length in characters.
     */
    async logEnds(
      runId: number,
      chunks: number,
    ): Promise<{ first: string[]; last: string[]; chars: number; count: number }> {
      const [first, last, [size]] = await Promise.all([
        db
          .select({ data: logChunks.data })
          .from(logChunks)
          .where(eq(logChunks.runId, runId))
          .orderBy(asc(logChunks.seq))
          .limit(chunks),
        db
          .select({ data: logChunks.data })
          .from(logChunks)
          .where(eq(logChunks.runId, runId))
          .orderBy(desc(logChunks.seq))
          .limit(chunks),
        db
          .select({
            chars: sql<number>`coalesce(sum(length(${logChunks.data})), 0)::int`,
            count: sql<number>`count(*)::int`,
          })
          .from(logChunks)
          .where(eq(logChunks.runId, runId)),
      ]);
      return {
        first: first.map((row) => row.data),
        last: last.map((row) => row.data).reverse(),
        chars: size?.chars ?? 0,
        count: size?.count ?? 0,
      };
    },

    /** The names of these minions. */
    async minionNames(ids: readonly number[]): Promise<Map<number, string>> {
      const names = new Map<number, string>();
      if (ids.length === 0) return names;
      const rows = await db
        .select({ id: minions.id, name: minions.name })
        .from(minions)
        .where(inArray(minions.id, [...ids]));
      for (const row of rows) names.set(row.id, row.name);
      return names;
    },

    /**
     * Records an uploaded artifact if the run is still running on this
     * minion, checked in the same transaction (holding the run's row, as a
     * report does): once the run has reported, its artifacts are frozen. A
     * second upload of a name replaces the first; `replaced` is the storage
     * key the name had before, for the caller to delete.
     */
    async recordArtifact(artifact: {
      runId: number;
      minionId: number;
      name: string;
      size: number;
      sha256: string;
      contentType: string;
      storageKey: string;
      now: Date;
    }): Promise<
      { outcome: 'recorded'; replaced: string | undefined } | { outcome: 'not-running' }
    > {
      const { now, minionId, ...values } = artifact;
      return db.transaction(async (tx) => {
        const [run] = await tx
          .select({ id: runs.id })
          .from(runs)
          .where(
            and(eq(runs.id, values.runId), eq(runs.minionId, minionId), eq(runs.state, 'running')),
          )
          .for('update');
        if (!run) return { outcome: 'not-running' as const };
        const [previous] = await tx
          .select({ storageKey: artifacts.storageKey })
          .from(artifacts)
          .where(and(eq(artifacts.runId, values.runId), eq(artifacts.name, values.name)));
        await tx
          .insert(artifacts)
          .values({ ...values, createdAt: now })
          .onConflictDoUpdate({
            target: [artifacts.runId, artifacts.name],
            set: {
              size: values.size,
              sha256: values.sha256,
              contentType: values.contentType,
              storageKey: values.storageKey,
              createdAt: now,
            },
          });
        return { outcome: 'recorded' as const, replaced: previous?.storageKey };
      });
    },

    async artifact(runId: number, name: string): Promise<ArtifactRow | undefined> {
      const [row] = await db
        .select()
        .from(artifacts)
        .where(and(eq(artifacts.runId, runId), eq(artifacts.name, name)));
      return row;
    },

    async artifactsOfRun(runId: number): Promise<ArtifactRow[]> {
      return db
        .select()
        .from(artifacts)
        .where(eq(artifacts.runId, runId))
        .orderBy(asc(artifacts.name));
    },

    /** Pending command jobs per tag set; untrusted graphs' jobs queue apart. */
    async pendingByTagSet(): Promise<
      { tags: string[]; trust: 'trusted' | 'untrusted'; pending: number }[]
    > {
      return db
        .select({
          tags: tagSets.tags,
          trust: sql<
            'trusted' | 'untrusted'
          >`case when starts_with(${tagSets.key}, ${UNTRUSTED_PREFIX}) then 'untrusted' else 'trusted' end`,
          pending: count(jobs.id),
        })
        .from(jobs)
        .innerJoin(tagSets, eq(tagSets.id, jobs.tagSetId))
        .where(and(eq(jobs.state, 'pending'), eq(jobs.kind, 'command')))
        .groupBy(tagSets.id, tagSets.tags, tagSets.key)
        .orderBy(asc(tagSets.key));
    },
  };
}

export type MinionQueries = ReturnType<typeof createMinionQueries>;
