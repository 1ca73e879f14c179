import { and, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { TowerDb } from './connection.js';
import { installations, repositories } from './schema.js';

export type InstallationRecord = {
  id: number;
  accountLogin: string;
  accountId: number;
  accountType: string;
  repositorySelection: string | undefined;
  suspendedAt: Date | undefined;
};

export type RepositoryRecord = { id: number; fullName: string; private: boolean };

/** Installations and their repositories, kept current from GitHub's events. */
export function createInstallationQueries(db: TowerDb) {
  return {
    async upsertInstallation(installation: InstallationRecord, now: Date): Promise<void> {
      const values = {
        accountLogin: installation.accountLogin,
        accountId: installation.accountId,
        accountType: installation.accountType,
        repositorySelection: installation.repositorySelection ?? null,
        suspendedAt: installation.suspendedAt ?? null,
        removedAt: null,
        updatedAt: now,
      };
      await db
        .insert(installations)
        .values({ id: installation.id, ...values, createdAt: now })
        .onConflictDoUpdate({ target: installations.id, set: values });
    },

    /** Uninstalled: the installation and its repositories are marked removed, not deleted. */
    async removeInstallation(id: number, now: Date): Promise<void> {
      await db.transaction(async (tx) => {
        await tx
          .update(installations)
          .set({ removedAt: now, updatedAt: now })
          .where(eq(installations.id, id));
        await tx
          .update(repositories)
          .set({ removedAt: now, updatedAt: now })
          .where(and(eq(repositories.installationId, id), isNull(repositories.removedAt)));
      });
    },

    async upsertRepositories(
      installationId: number,
      repos: readonly RepositoryRecord[],
      now: Date,
    ): Promise<void> {
      if (repos.length === 0) return;
      await db
        .insert(repositories)
        .values(
          repos.map((repo) => ({
            id: repo.id,
            installationId,
            fullName: repo.fullName,
            private: repo.private,
            createdAt: now,
            updatedAt: now,
          })),
        )
        .onConflictDoUpdate({
          target: repositories.id,
          set: {
            installationId,
            fullName: sql`excluded.full_name`,
            private: sql`excluded.private`,
            removedAt: null,
            updatedAt: now,
          },
        });
    },

    async setVisibility(repositoryId: number, isPrivate: boolean, now: Date): Promise<void> {
      await db
        .update(repositories)
        .set({ private: isPrivate, updatedAt: now })
        .where(and(eq(repositories.id, repositoryId), ne(repositories.private, isPrivate)));
    },

    async removeRepositories(installationId: number, ids: readonly number[], now: Date) {
      if (ids.length === 0) return;
      await db
        .update(repositories)
        .set({ removedAt: now, updatedAt: now })
        .where(
          and(eq(repositories.installationId, installationId), inArray(repositories.id, [...ids])),
        );
    },

    async getInstallation(id: number) {
      const [row] = await db.select().from(installations).where(eq(installations.id, id));
      return row;
    },

    /** A repository still in an active installation, with the installation that reaches it. */
    async getRepository(id: number) {
      const [row] = await db
        .select({
          id: repositories.id,
          fullName: repositories.fullName,
          installationId: repositories.installationId,
        })
        .from(repositories)
        .innerJoin(installations, eq(installations.id, repositories.installationId))
        .where(
          and(
            eq(repositories.id, id),
            isNull(repositories.removedAt),
            isNull(installations.removedAt),
          ),
        );
      return row;
    },

    async listRepositories(installationId: number) {
      return db
        .select()
        .from(repositories)
        .where(eq(repositories.installationId, installationId))
        .orderBy(repositories.fullName);
    },
  };
}

export type InstallationQueries = ReturnType<typeof createInstallationQueries>;
