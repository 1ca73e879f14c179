import type { Probot } from 'probot';
import type { Clock } from '../lib/clock.js';

/** The installations a Tower knows; the database implements it. */
export type InstallationStore = {
  upsertInstallation(
    installation: {
      id: number;
      accountLogin: string;
      accountId: number;
      accountType: string;
      repositorySelection: string | undefined;
      suspendedAt: Date | undefined;
    },
    now: Date,
  ): Promise<void>;
  removeInstallation(id: number, now: Date): Promise<void>;
  upsertRepositories(
    installationId: number,
    repos: readonly { id: number; fullName: string; private: boolean }[],
    now: Date,
  ): Promise<void>;
  removeRepositories(installationId: number, ids: readonly number[], now: Date): Promise<void>;
  /** Records whether the repository is private now; a no-op when that is what is known. */
  setVisibility(repositoryId: number, isPrivate: boolean, now: Date): Promise<void>;
};

type InstallationPayload = {
  id: number;
  account: { id: number; login?: string; slug?: string; type?: string } | null;
  target_type?: string;
  repository_selection?: string;
  suspended_at?: string | null;
};

type RepositoryPayload = { id: number; full_name: string; private: boolean };

function installationRecord(installation: InstallationPayload) {
  const account = installation.account;
  return {
    id: installation.id,
    // Enterprise installations have a slug where user and organisation accounts have a login.
    accountLogin: account?.login ?? account?.slug ?? '',
    accountId: account?.id ?? 0,
    accountType: account?.type ?? installation.target_type ?? 'Enterprise',
    repositorySelection: installation.repository_selection,
    suspendedAt: installation.suspended_at ? new Date(installation.suspended_at) : undefined,
  };
}

const repositoryRecords = (repos: readonly RepositoryPayload[] | undefined) =>
  (repos ?? []).map((repo) => ({ id: repo.id, fullName: repo.full_name, private: repo.private }));

/** Keeps installations and their repositories current. Every handler is idempotent. */
export function registerInstallationHandlers(
  app: Probot,
  { store, clock }: { store: InstallationStore; clock: Clock },
): void {
  app.on(
    [
      'installation.created',
      'installation.new_permissions_accepted',
      'installation.suspend',
      'installation.unsuspend',
    ],
    async ({ payload }) => {
      const now = clock.now();
      await store.upsertInstallation(installationRecord(payload.installation), now);
      await store.upsertRepositories(
        payload.installation.id,
        repositoryRecords(payload.repositories),
        now,
      );
    },
  );

  app.on('installation.deleted', async ({ payload }) => {
    await store.removeInstallation(payload.installation.id, clock.now());
  });

  // A repository made private on GitHub must stop being readable here at once:
  // every event about it says which it is now (access/ reads the flag).
  app.on(
    ['push', 'pull_request', 'issue_comment', 'pull_request_review', 'check_run', 'check_suite'],
    async ({ payload }) => {
      await store.setVisibility(payload.repository.id, payload.repository.private, clock.now());
    },
  );

  app.on(
    ['installation_repositories.added', 'installation_repositories.removed'],
    async ({ payload }) => {
      const now = clock.now();
      const installationId = payload.installation.id;
      await store.upsertInstallation(installationRecord(payload.installation), now);
      await store.upsertRepositories(
        installationId,
        repositoryRecords(payload.repositories_added),
        now,
      );
      await store.removeRepositories(
        installationId,
        payload.repositories_removed.flatMap((repo) => (repo.id === undefined ? [] : [repo.id])),
        now,
      );
    },
  );
}
