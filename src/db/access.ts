/**
 * What access decisions read (src/access/): API tokens, and the repository
 * a graph, job or run belongs to, with whether it is private.
 */
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { apiTokens, graphs, jobs, repositories, runs } from './schema.js';

/** A repository as access decisions see it. */
export type RepositoryVisibility = { id: number; fullName: string; private: boolean };

export type ApiTokenRow = {
  id: number;
  name: string;
  operator: boolean;
  repositoryIds: number[] | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
};

const visibility = {
  id: repositories.id,
  fullName: repositories.fullName,
  private: repositories.private,
};

const tokenColumns = {
  id: apiTokens.id,
  name: apiTokens.name,
  operator: apiTokens.operator,
  repositoryIds: apiTokens.repositoryIds,
  createdAt: apiTokens.createdAt,
  lastUsedAt: apiTokens.lastUsedAt,
  revokedAt: apiTokens.revokedAt,
};

export function createAccessQueries(db: TowerDb) {
  return {
    async insertToken(token: {
      name: string;
      tokenHash: string;
      operator: boolean;
      repositoryIds: number[] | null;
      now: Date;
    }): Promise<ApiTokenRow> {
      const [row] = await db
        .insert(apiTokens)
        .values({
          name: token.name,
          tokenHash: token.tokenHash,
          operator: token.operator,
          repositoryIds: token.repositoryIds,
          createdAt: token.now,
        })
        .returning(tokenColumns);
      return row!;
    },

    /** The live (not revoked) token with this hash. */
    async liveToken(tokenHash: string): Promise<ApiTokenRow | undefined> {
      const [row] = await db
        .select(tokenColumns)
        .from(apiTokens)
        .where(and(eq(apiTokens.tokenHash, tokenHash), isNull(apiTokens.revokedAt)));
      return row;
    },

    async touchToken(id: number, now: Date): Promise<void> {
      await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, id));
    },

    async listTokens(): Promise<ApiTokenRow[]> {
      return db.select(tokenColumns).from(apiTokens).orderBy(desc(apiTokens.id));
    },

    /** Revokes the token; undefined when there is no such token. */
    async revokeToken(id: number, now: Date): Promise<ApiTokenRow | undefined> {
      const [row] = await db
        .update(apiTokens)
        .set({ revokedAt: sql`coalesce(${apiTokens.revokedAt}, ${now.toISOString()})` })
        .where(eq(apiTokens.id, id))
        .returning(tokenColumns);
      return row;
    },

    /** GitHub's repository names are case-insensitive. */
    async repositoryByName(fullName: string): Promise<RepositoryVisibility | undefined> {
      const [row] = await db
        .select(visibility)
        .from(repositories)
        .where(sql`lower(${repositories.fullName}) = ${fullName.toLowerCase()}`)
        .orderBy(sql`${repositories.removedAt} is not null`, desc(repositories.updatedAt))
        .limit(1);
      return row;
    },

    async repositoryOfGraph(
      graphId: number,
    ): Promise<(RepositoryVisibility & { graphId: number }) | undefined> {
      const [row] = await db
        .select({ ...visibility, graphId: graphs.id })
        .from(graphs)
        .innerJoin(repositories, eq(repositories.id, graphs.repositoryId))
        .where(eq(graphs.id, graphId));
      return row;
    },

    async repositoryOfJob(
      jobId: number,
    ): Promise<(RepositoryVisibility & { graphId: number }) | undefined> {
      const [row] = await db
        .select({ ...visibility, graphId: graphs.id })
        .from(jobs)
        .innerJoin(graphs, eq(graphs.id, jobs.graphId))
        .innerJoin(repositories, eq(repositories.id, graphs.repositoryId))
        .where(eq(jobs.id, jobId));
      return row;
    },

    async repositoryOfRun(
      runId: number,
    ): Promise<(RepositoryVisibility & { graphId: number }) | undefined> {
      const [row] = await db
        .select({ ...visibility, graphId: graphs.id })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .innerJoin(graphs, eq(graphs.id, jobs.graphId))
        .innerJoin(repositories, eq(repositories.id, graphs.repositoryId))
        .where(eq(runs.id, runId));
      return row;
    },

    /** A running run's graph and read-token hash; undefined when the run is not running. */
    async runningRunReadToken(
      runId: number,
    ): Promise<{ graphId: number; readTokenHash: string | null } | undefined> {
      const [row] = await db
        .select({ graphId: jobs.graphId, readTokenHash: runs.readTokenHash })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .where(and(eq(runs.id, runId), eq(runs.state, 'running')));
      return row;
    },

    /** Whether the minion is running a job of the graph now (it reads its upstream manifests). */
    async minionRunsInGraph(minionId: number, graphId: number): Promise<boolean> {
      const [row] = await db
        .select({ id: runs.id })
        .from(runs)
        .innerJoin(jobs, eq(jobs.id, runs.jobId))
        .where(
          and(eq(runs.minionId, minionId), eq(runs.state, 'running'), eq(jobs.graphId, graphId)),
        )
        .limit(1);
      return row !== undefined;
    },
  };
}

export type AccessQueries = ReturnType<typeof createAccessQueries>;
