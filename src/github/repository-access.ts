/**
 * Where a minion fetches a repository from: its clone URL, and an
 * installation token limited to that one repository with read access to its
 * contents. GitHub's tokens last an hour; the minion uses this one only to
 * fetch the commit it claimed.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';

export type RepositoryLocation = { fullName: string; installationId: number };

export type CheckoutSource = { url: string; token: string | null; expiresAt: Date | null };

/** Clone URLs change only with a rename; this long is soon enough to notice one. */
const URL_TTL_MS = 10 * 60_000;

export function createGitHubRepositoryAccess(options: {
  appId: number;
  privateKey: string;
  /** The GitHub API base URL (GitHub Enterprise, or the simulator). */
  baseUrl: string;
  /** The repository's name and installation; undefined when Tower does not have it. */
  locate: (repositoryId: number) => Promise<RepositoryLocation | undefined>;
  now?: () => number;
}) {
  const app = new Octokit({
    baseUrl: options.baseUrl,
    authStrategy: createAppAuth,
    auth: { appId: options.appId, privateKey: options.privateKey },
  });
  const now = options.now ?? Date.now;
  const urls = new Map<number, { url: string; until: number }>();

  return {
    async checkoutSource(repositoryId: number): Promise<CheckoutSource | undefined> {
      const location = await options.locate(repositoryId);
      if (!location) return undefined;
      // auth-app caches installation tokens until shortly before they expire.
      const auth = (await app.auth({
        type: 'installation',
        installationId: location.installationId,
        repositoryIds: [repositoryId],
        permissions: { contents: 'read' },
      })) as { token: string; expiresAt: string };
      let cached = urls.get(repositoryId);
      if (!cached || cached.until < now()) {
        const [owner = '', repo = ''] = location.fullName.split('/');
        const installation = new Octokit({ baseUrl: options.baseUrl, auth: auth.token });
        const { data } = await installation.rest.repos.get({ owner, repo });
        cached = { url: data.clone_url, until: now() + URL_TTL_MS };
        urls.set(repositoryId, cached);
      }
      return { url: cached.url, token: auth.token, expiresAt: new Date(auth.expiresAt) };
    },
  };
}

export type GitHubRepositoryAccess = ReturnType<typeof createGitHubRepositoryAccess>;
