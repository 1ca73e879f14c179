/**
 * The GitHub port over Octokit: one client per installation, authenticated
 * as the app's installation (@octokit/auth-app caches the tokens), against
 * the configured API base URL (github.com, GitHub Enterprise, or the
 * simulator). Octokit's errors become GitHubErrors, with the time to retry
 * when GitHub gave one; after every response `onRateLimit` hears how much of
 * the primary rate limit is left.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { definitionLimitErrors } from '../definitions/index.js';
import { errorMessage } from '../lib/errors.js';
import {
  GitHubError,
  permissionLevels,
  type GitHubPort,
  type Permission,
  type RepoRef,
  type TowerFile,
} from './port.js';

export type RateLimitNote = { installationId: number; remaining: number; resetAt: Date };

export function createOctokitPort(options: {
  appId: number;
  privateKey: string;
  baseUrl: string;
  onRateLimit?: (note: RateLimitNote) => void;
  /** The clock retry-after counts from. */
  now?: () => Date;
}): GitHubPort {
  const now = options.now ?? (() => new Date());
  const clients = new Map<number, Octokit>();

  function client(installationId: number): Octokit {
    let octokit = clients.get(installationId);
    if (!octokit) {
      octokit = new Octokit({
        baseUrl: options.baseUrl,
        authStrategy: createAppAuth,
        auth: { appId: options.appId, privateKey: options.privateKey, installationId },
        // Tower schedules its own retries within its budgets.
        request: { retries: 0 },
        log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      });
      octokit.hook.after('request', (response) => {
        const remaining = Number(response.headers['x-ratelimit-remaining']);
        const reset = Number(response.headers['x-ratelimit-reset']);
        if (Number.isFinite(remaining) && Number.isFinite(reset)) {
          options.onRateLimit?.({ installationId, remaining, resetAt: new Date(reset * 1000) });
        }
      });
      clients.set(installationId, octokit);
    }
    return octokit;
  }

  async function call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toGitHubError(what, error, now());
    }
  }

  const base = (repo: RepoRef) => ({ owner: repo.owner, repo: repo.repo });

  return {
    async readTowerFiles(repo, sha) {
      const octokit = client(repo.installationId);
      const tree = await call('read the tree', () =>
        octokit.rest.git.getTree({ ...base(repo), tree_sha: sha, recursive: '1' }),
      );
      let entries = tree.data.tree;
      if (tree.data.truncated) {
        // A huge repository: read just the .tower/ subtree.
        const top = entries.find((e) => e.path === '.tower' && e.type === 'tree');
        if (!top?.sha) return [];
        const sub = await call('read .tower/', () =>
          octokit.rest.git.getTree({ ...base(repo), tree_sha: top.sha, recursive: '1' }),
        );
        entries = sub.data.tree.map((e) => ({ ...e, path: `.tower/${e.path ?? ''}` }));
      }
      const wanted = entries.filter(
        (e) =>
          e.type === 'blob' &&
          e.sha !== undefined &&
          e.path?.startsWith('.tower/') &&
          /\.ya?ml$/.test(e.path),
      );
      // Over the limits, nothing is read: the loader reports the limits from the sizes.
      const listed = wanted.map((e) => ({ path: e.path, size: e.size ?? 0 }));
      if (definitionLimitErrors(listed).length > 0) {
        return listed
          .map((e) => ({ ...e, content: '' }))
          .sort((a, b) => (a.path < b.path ? -1 : 1));
      }
      const files: TowerFile[] = [];
      for (const entry of wanted) {
        const blob = await call(`read ${entry.path}`, () =>
          octokit.rest.git.getBlob({ ...base(repo), file_sha: entry.sha }),
        );
        const text =
          blob.data.encoding === 'base64'
            ? Buffer.from(blob.data.content, 'base64').toString('utf8')
            : blob.data.content;
        files.push({ path: entry.path, content: text });
      }
      return files.sort((a, b) => (a.path < b.path ? -1 : 1));
    },

    async commitMessage(repo, sha) {
      const { data } = await call('read the commit', () =>
        client(repo.installationId).rest.git.getCommit({ ...base(repo), commit_sha: sha }),
      );
      return data.message;
    },

    async compareFiles(repo, baseSha, head) {
      const { data } = await call('compare the commits', () =>
        client(repo.installationId).rest.repos.compareCommitsWithBasehead({
          ...base(repo),
          basehead: `${baseSha}...${head}`,
          per_page: 100,
        }),
      );
      // GitHub lists at most 300 files of a comparison: beyond that, nobody knows what changed.
      const files = data.files ?? [];
      if (files.length >= 300) return null;
      return files.flatMap((f) =>
        f.previous_filename ? [f.filename, f.previous_filename] : [f.filename],
      );
    },

    async pullRequestFiles(repo, number) {
      const octokit = client(repo.installationId);
      const files = await call('list the pull request files', () =>
        octokit.paginate(octokit.rest.pulls.listFiles, {
          ...base(repo),
          pull_number: number,
          per_page: 100,
        }),
      );
      // GitHub lists at most 3,000 files of a pull request.
      if (files.length >= 3000) return null;
      return files.flatMap((f) =>
        f.previous_filename ? [f.filename, f.previous_filename] : [f.filename],
      );
    },

    async createCheckRun(repo, fields) {
      const { data } = await call('create a check run', () =>
        client(repo.installationId).rest.checks.create({ ...base(repo), ...fields }),
      );
      return data.id;
    },

    async updateCheckRun(repo, id, fields) {
      const { head_sha: _headSha, ...rest } = fields;
      // Octokit types a completed update as a union member of its own; the fields are GitHub's.
      const params = { ...base(repo), check_run_id: id, ...rest } as Parameters<
        Octokit['rest']['checks']['update']
      >[0];
      await call('update a check run', () =>
        client(repo.installationId).rest.checks.update(params),
      );
    },

    async createComment(repo, issueNumber, body) {
      const { data } = await call('comment', () =>
        client(repo.installationId).rest.issues.createComment({
          ...base(repo),
          issue_number: issueNumber,
          body,
        }),
      );
      return data.id;
    },

    async updateComment(repo, commentId, body) {
      await call('update a comment', () =>
        client(repo.installationId).rest.issues.updateComment({
          ...base(repo),
          comment_id: commentId,
          body,
        }),
      );
    },

    async pullRequest(repo, number) {
      try {
        const { data } = await client(repo.installationId).rest.pulls.get({
          ...base(repo),
          pull_number: number,
        });
        return {
          number: data.number,
          state: data.state === 'open' ? 'open' : 'closed',
          title: data.title,
          merged: data.merged,
          draft: data.draft ?? false,
          author: data.user.login,
          headSha: data.head.sha,
          headRef: data.head.ref,
          headRepoId: data.head.repo?.id ?? null,
          headRepoOwner: data.head.repo?.owner.login ?? null,
          baseRepoId: data.base.repo.id,
          baseRef: data.base.ref,
          baseSha: data.base.sha,
        };
      } catch (error) {
        const failure = toGitHubError('read a pull request', error, now());
        if (failure.status === 404) return undefined;
        throw failure;
      }
    },

    async branchSha(repo, branch) {
      try {
        const { data } = await client(repo.installationId).rest.git.getRef({
          ...base(repo),
          ref: `heads/${branch}`,
        });
        return data.object.sha;
      } catch (error) {
        const failure = toGitHubError('read a branch', error, now());
        if (failure.status === 404) return undefined;
        throw failure;
      }
    },

    async branchProtected(repo, branch) {
      try {
        const { data } = await client(repo.installationId).rest.repos.getBranch({
          ...base(repo),
          branch,
        });
        return data.protected;
      } catch (error) {
        const failure = toGitHubError('read a branch', error, now());
        if (failure.status === 404) return false;
        throw failure;
      }
    },

    async setBranch(repo, branch, sha) {
      const octokit = client(repo.installationId);
      try {
        await octokit.rest.git.createRef({ ...base(repo), ref: `refs/heads/${branch}`, sha });
      } catch (error) {
        const failure = toGitHubError('create a branch', error, now());
        if (failure.status !== 422) throw failure;
        // It exists: moved, whatever it held (a staging branch of an earlier try).
        await call('move a branch', () =>
          octokit.rest.git.updateRef({ ...base(repo), ref: `heads/${branch}`, sha, force: true }),
        );
      }
    },

    async fastForward(repo, branch, sha) {
      try {
        await client(repo.installationId).rest.git.updateRef({
          ...base(repo),
          ref: `heads/${branch}`,
          sha,
          force: false,
        });
        return 'ok';
      } catch (error) {
        const failure = toGitHubError('fast-forward a branch', error, now());
        if (failure.status === 422) return 'not-fast-forward';
        throw failure;
      }
    },

    async deleteBranch(repo, branch) {
      try {
        await client(repo.installationId).rest.git.deleteRef({
          ...base(repo),
          ref: `heads/${branch}`,
        });
      } catch (error) {
        const failure = toGitHubError('delete a branch', error, now());
        if (failure.status !== 404 && failure.status !== 422) throw failure;
      }
    },

    async mergeInto(repo, branch, head, message) {
      try {
        const response = await client(repo.installationId).rest.repos.merge({
          ...base(repo),
          base: branch,
          head,
          commit_message: message,
        });
        // 204: nothing to merge, the branch has the commit already.
        if ((response.status as number) === 204) return { kind: 'up-to-date' };
        return { kind: 'merged', sha: response.data.sha };
      } catch (error) {
        const failure = toGitHubError('merge', error, now());
        if (failure.status === 409) return { kind: 'conflict' };
        throw failure;
      }
    },

    async commit(repo, sha) {
      const { data } = await call('read a commit', () =>
        client(repo.installationId).rest.git.getCommit({ ...base(repo), commit_sha: sha }),
      );
      return {
        tree: data.tree.sha,
        message: data.message,
        parents: data.parents.map((p) => p.sha),
      };
    },

    async createCommit(repo, commit) {
      const { data } = await call('create a commit', () =>
        client(repo.installationId).rest.git.createCommit({ ...base(repo), ...commit }),
      );
      return data.sha;
    },

    async pullRequestCommits(repo, number) {
      const octokit = client(repo.installationId);
      const commits = await call("list a pull request's commits", () =>
        octokit.paginate(octokit.rest.pulls.listCommits, {
          ...base(repo),
          pull_number: number,
          per_page: 100,
        }),
      );
      return commits.map((c) => ({
        sha: c.sha,
        message: c.commit.message,
        author: { name: c.commit.author?.name ?? '', email: c.commit.author?.email ?? '' },
      }));
    },

    async reviews(repo, number) {
      const octokit = client(repo.installationId);
      const reviews = await call('list reviews', () =>
        octokit.paginate(octokit.rest.pulls.listReviews, {
          ...base(repo),
          pull_number: number,
          per_page: 100,
        }),
      );
      return reviews.map((r) => ({
        user: r.user?.login ?? '',
        state: r.state,
        commitId: r.commit_id ?? null,
      }));
    },

    async closePullRequest(repo, number) {
      await call('close a pull request', () =>
        client(repo.installationId).rest.pulls.update({
          ...base(repo),
          pull_number: number,
          state: 'closed',
        }),
      );
    },

    async permission(repo, login) {
      try {
        const { data } = await client(
          repo.installationId,
        ).rest.repos.getCollaboratorPermissionLevel({
          ...base(repo),
          username: login,
        });
        // role_name tells maintain and triage apart from write and read.
        const role = data.role_name as Permission;
        if ((permissionLevels as readonly string[]).includes(role)) return role;
        return (permissionLevels as readonly string[]).includes(data.permission)
          ? (data.permission as Permission)
          : 'none';
      } catch (error) {
        const failure = toGitHubError('read a permission', error, now());
        if (failure.status === 404) return 'none';
        throw failure;
      }
    },

    async isTeamMember(repo, org, teamSlug, login) {
      try {
        const { data } = await client(repo.installationId).rest.teams.getMembershipForUserInOrg({
          org,
          team_slug: teamSlug,
          username: login,
        });
        return data.state === 'active';
      } catch (error) {
        const failure = toGitHubError('read a team membership', error, now());
        if (failure.status === 404) return false;
        throw failure;
      }
    },
  };
}

/** Octokit's RequestError (or a network failure) as a GitHubError. */
export function toGitHubError(what: string, error: unknown, now: Date): GitHubError {
  if (error instanceof GitHubError) return error;
  const status =
    typeof (error as { status?: unknown }).status === 'number'
      ? (error as { status: number }).status
      : 0;
  const headers = ((error as { response?: { headers?: Record<string, string> } }).response
    ?.headers ?? {}) as Record<string, string | undefined>;
  let retryAt: Date | undefined;
  const retryAfter = Number(headers['retry-after']);
  if (Number.isFinite(retryAfter) && retryAfter > 0)
    retryAt = new Date(now.getTime() + retryAfter * 1000);
  else if (headers['x-ratelimit-remaining'] === '0' && headers['x-ratelimit-reset']) {
    retryAt = new Date(Number(headers['x-ratelimit-reset']) * 1000);
  }
  // A secondary limit may name no time: the budget backs off (src/db/github-budget.ts).
  const rateLimited =
    retryAt !== undefined ||
    status === 429 ||
    (status === 403 && /secondary rate limit|abuse/i.test(errorMessage(error)));
  const message = `GitHub would not ${what}: ${status === 0 ? '' : `${status} `}${errorMessage(error)}`;
  return new GitHubError(message, status, retryAt, { cause: error, rateLimited });
}
