/**
 * The REST operations the simulator serves, by GitHub's operationId. Bodies
 * and parameters arrive validated against the OpenAPI description; each
 * handler keeps GitHub's semantics and its error answers.
 */
import type {
  SimAnnotation,
  SimCheckConclusion,
  SimCheckRun,
  SimCheckStatus,
  SimCheckSuite,
  SimPullRequest,
  SimReactionContent,
  SimRepository,
} from './model.js';
import {
  ApiError,
  installationOf,
  notFound,
  repositoryOf,
  type ApiRequest,
  type Handler,
} from './rest.js';
import * as shapes from './rest-shapes.js';
import type { GitHubSimulator } from './simulator.js';

const ZERO_SHA = '0'.repeat(40);
const isSha = (value: string) => /^[0-9a-f]{40}$/.test(value);
const validationFailed = (errors: Record<string, unknown>[], message = 'Validation Failed') =>
  new ApiError(422, message, { errors });

/** A branch, tag or sha → commit sha, or 404. */
async function resolveCommit(
  sim: GitHubSimulator,
  repo: SimRepository,
  revision: string,
): Promise<string> {
  const sha = await sim.git.resolve(repo.fullName, revision);
  if (!sha) throw notFound();
  return sha;
}

const num = (value: unknown) => Number(value);

/** GitHub fires webhooks after answering: effects run in the background, tracked until settled. */
function background(sim: GitHubSimulator, work: Promise<void>): void {
  sim.track(work);
}

// ---- apps ------------------------------------------------------------------------

const apps: Record<string, Handler> = {
  'apps/get-authenticated': async (request, sim) => ({
    status: 200,
    body: shapes.integration(request.app, sim.urls),
  }),

  'apps/list-installations': async (request, sim) => ({
    status: 200,
    body: [...sim.state.installations.values()]
      .filter((i) => i.appId === request.app.id)
      .map((i) => shapes.installation(i, request.app, sim.urls)),
  }),

  'apps/get-installation': async (request, sim) => {
    const installation = sim.state.installations.get(num(request.params.installation_id));
    if (!installation || installation.appId !== request.app.id) throw notFound();
    return { status: 200, body: shapes.installation(installation, request.app, sim.urls) };
  },

  'apps/create-installation-access-token': async (request, sim) => {
    const installation = sim.state.installations.get(num(request.params.installation_id));
    if (!installation || installation.appId !== request.app.id) throw notFound();
    if (installation.suspendedAt) throw new ApiError(403, 'This installation has been suspended');
    const body = (request.body ?? {}) as { repository_ids?: number[]; repositories?: string[] };
    let repositoryIds: number[] | undefined;
    if (body.repository_ids || body.repositories) {
      const byName = (body.repositories ?? []).map(
        (name) => sim.repositoriesOf(installation).find((r) => r.name === name)?.id ?? -1,
      );
      repositoryIds = [...(body.repository_ids ?? []), ...byName];
      if (repositoryIds.some((id) => !installation.repositoryIds.includes(id))) {
        throw new ApiError(
          422,
          'There is at least one repository that does not exist or is not accessible to the parent installation.',
        );
      }
    }
    const token = sim.tokens.issue(installation.id, sim.clock.now(), repositoryIds);
    const repositories = repositoryIds
      ? repositoryIds.map((id) => sim.state.repositories.get(id)!)
      : undefined;
    return {
      status: 201,
      body: shapes.installationToken(
        {
          token: token.token,
          expiresAt: token.expiresAt,
          installation,
          repositories,
          permissions: request.app.permissions,
        },
        sim.urls,
        (repo) => sim.cloneUrl(repo),
      ),
    };
  },

  'apps/get-repo-installation': async (request, sim) => {
    const repo = repositoryOf(request);
    const installation = sim.state.installationFor(repo.id, request.app.id);
    if (!installation) throw notFound();
    return { status: 200, body: shapes.installation(installation, request.app, sim.urls) };
  },

  'apps/list-repos-accessible-to-installation': async (request, sim) => {
    const installation = installationOf(request);
    const repositories = sim.repositoriesOf(installation);
    return {
      status: 200,
      body: {
        total_count: repositories.length,
        repository_selection: installation.repositorySelection,
        repositories: repositories.map((r) => shapes.repository(r, sim.urls, sim.cloneUrl(r))),
      },
    };
  },
};

// ---- repositories, contents, compare, merges, permissions ---------------------------

const repos: Record<string, Handler> = {
  'repos/get': async (request, sim) => {
    const repo = repositoryOf(request);
    return { status: 200, body: shapes.fullRepository(repo, sim.urls, sim.cloneUrl(repo)) };
  },

  'repos/get-content': async (request, sim) => {
    const repo = repositoryOf(request);
    const ref = typeof request.query.ref === 'string' ? request.query.ref : repo.defaultBranch;
    const sha = await resolveCommit(sim, repo, ref);
    const path = (typeof request.params.path === 'string' ? request.params.path : '').replace(
      /^\/+|\/+$/g,
      '',
    );
    const found = await sim.git.readPath(repo.fullName, sha, path);
    if (!found) throw notFound();
    if (found.type === 'dir') {
      return { status: 200, body: shapes.contentDirectory(repo, path, found.entries, sim.urls) };
    }
    return {
      status: 200,
      body: shapes.contentFile(
        repo,
        { path, sha: found.sha, size: found.content.length, content: found.content },
        sim.urls,
      ),
    };
  },

  'repos/get-commit': async (request, sim) => {
    const repo = repositoryOf(request);
    const sha = await resolveCommit(sim, repo, String(request.params.ref));
    const info = (await sim.git.commitInfo(repo.fullName, sha))!;
    const parent = info.parents[0];
    const files = parent ? (await sim.git.compare(repo.fullName, parent, sha)).files : [];
    return { status: 200, body: shapes.commit(repo, info, files, sim.urls) };
  },

  'repos/compare-commits-with-basehead': async (request, sim) => {
    const repo = repositoryOf(request);
    const basehead = String(request.params.basehead);
    const [baseName, headName] = basehead.includes('...')
      ? basehead.split('...', 2)
      : basehead.split('..', 2);
    if (!baseName || !headName) throw notFound();
    const baseSha = await resolveCommit(sim, repo, baseName);
    const headSha = await resolveCommit(sim, repo, headName);
    const comparison = await sim.git.compare(repo.fullName, baseSha, headSha);
    if (!comparison.mergeBase) throw notFound();
    const info = async (sha: string) => (await sim.git.commitInfo(repo.fullName, sha))!;
    return {
      status: 200,
      body: shapes.commitComparison(
        repo,
        {
          base: await info(baseSha),
          mergeBase: await info(comparison.mergeBase),
          commits: await Promise.all(comparison.commits.map(info)),
          comparison,
          basehead,
        },
        sim.urls,
      ),
    };
  },

  'repos/merge': async (request, sim) => {
    const repo = repositoryOf(request);
    const body = request.body as { base: string; head: string; commit_message?: string };
    const baseRef = `refs/heads/${body.base}`;
    const baseSha = await sim.git.resolve(repo.fullName, baseRef);
    if (!baseSha) throw new ApiError(404, 'Base does not exist');
    const headSha = await sim.git.resolve(repo.fullName, body.head);
    if (!headSha) throw new ApiError(404, 'Head does not exist');
    const bot = sim.state.botAccount(request.app);
    const merged = await sim.git.merge(repo.fullName, {
      base: baseSha,
      head: headSha,
      message: body.commit_message ?? `Merge ${body.head} into ${body.base}`,
      author: sim.person(bot),
    });
    if (merged.kind === 'up-to-date') return { status: 204 };
    if (merged.kind === 'conflict') throw new ApiError(409, 'Merge conflict');
    const moved = await sim.git.updateRef(repo.fullName, baseRef, merged.sha, {
      expectedOld: baseSha,
    });
    if (moved !== 'ok')
      throw new ApiError(409, 'Base branch was modified. Review and try the merge again.');
    background(sim, sim.refUpdated(repo, baseRef, baseSha, merged.sha, bot, false));
    const info = (await sim.git.commitInfo(repo.fullName, merged.sha))!;
    const files = (await sim.git.compare(repo.fullName, baseSha, merged.sha)).files;
    return { status: 201, body: shapes.commit(repo, info, files, sim.urls) };
  },

  'repos/get-branch': async (request, sim) => {
    const repo = repositoryOf(request);
    const name = String(request.params.branch);
    const sha = (await sim.git.refs(repo.fullName, `refs/heads/${name}`)).find(
      (r) => r.ref === `refs/heads/${name}`,
    )?.sha;
    if (!sha) throw new ApiError(404, 'Branch not found');
    const info = (await sim.git.commitInfo(repo.fullName, sha))!;
    const isProtected = sim.state.protectedBranches.has(`${repo.id}:${name}`);
    return { status: 200, body: shapes.branch(repo, name, info, isProtected, sim.urls) };
  },

  'repos/get-collaborator-permission-level': async (request, sim) => {
    const repo = repositoryOf(request);
    const account = sim.state.account(String(request.params.username));
    if (!account) throw new ApiError(404, `${String(request.params.username)} is not a user`);
    return {
      status: 200,
      body: shapes.collaboratorPermission(
        account,
        sim.state.permission(repo, account.login),
        sim.urls,
      ),
    };
  },
};

// ---- git data ------------------------------------------------------------------------

const git: Record<string, Handler> = {
  'git/get-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const ref = `refs/${String(request.params.ref)}`;
    const sha = (await sim.git.refs(repo.fullName, ref)).find((r) => r.ref === ref)?.sha;
    if (!sha) throw notFound();
    return { status: 200, body: shapes.gitRef(repo, ref, sha, sim.urls) };
  },

  'git/list-matching-refs': async (request, sim) => {
    const repo = repositoryOf(request);
    const prefix = `refs/${String(request.params.ref)}`;
    const refs = await sim.git.refs(repo.fullName, prefix);
    return { status: 200, body: refs.map((r) => shapes.gitRef(repo, r.ref, r.sha, sim.urls)) };
  },

  'git/create-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const { ref, sha } = request.body as { ref: string; sha: string };
    if (!/^refs\/[^/]+\/.+/.test(ref)) throw new ApiError(422, `'${ref}' is not a valid ref name.`);
    if ((await sim.git.objectType(repo.fullName, sha)) === undefined)
      throw new ApiError(422, 'Object does not exist');
    const result = await sim.git.updateRef(repo.fullName, ref, sha, { expectedOld: null });
    if (result === 'stale') throw new ApiError(422, 'Reference already exists');
    if (result !== 'ok') throw new ApiError(422, 'Object does not exist');
    background(
      sim,
      sim.refUpdated(repo, ref, ZERO_SHA, sha, sim.state.botAccount(request.app), false),
    );
    return { status: 201, body: shapes.gitRef(repo, ref, sha, sim.urls) };
  },

  'git/update-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const ref = `refs/${String(request.params.ref)}`;
    const { sha, force = false } = request.body as { sha: string; force?: boolean };
    const current = (await sim.git.refs(repo.fullName, ref)).find((r) => r.ref === ref)?.sha;
    if (!current) throw new ApiError(422, 'Reference does not exist');
    if ((await sim.git.objectType(repo.fullName, sha)) === undefined)
      throw new ApiError(422, 'Object does not exist');
    if (
      ref.startsWith('refs/heads/') &&
      sim.state.protectedBranches.has(`${repo.id}:${ref.slice('refs/heads/'.length)}`)
    ) {
      throw new ApiError(422, `Protected branch update failed for ${ref}.`);
    }
    const result = await sim.git.updateRef(repo.fullName, ref, sha, {
      expectedOld: current,
      force,
    });
    if (result === 'not-fast-forward') throw new ApiError(422, 'Update is not a fast forward');
    if (result === 'stale') throw new ApiError(422, 'Reference cannot be updated');
    if (result !== 'ok') throw new ApiError(422, 'Object does not exist');
    if (current !== sha) {
      background(
        sim,
        sim.refUpdated(repo, ref, current, sha, sim.state.botAccount(request.app), force),
      );
    }
    return { status: 200, body: shapes.gitRef(repo, ref, sha, sim.urls) };
  },

  'git/delete-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const ref = `refs/${String(request.params.ref)}`;
    const current = (await sim.git.refs(repo.fullName, ref)).find((r) => r.ref === ref)?.sha;
    if (!current || !(await sim.git.deleteRef(repo.fullName, ref)))
      throw new ApiError(422, 'Reference does not exist');
    background(
      sim,
      sim.refUpdated(repo, ref, current, ZERO_SHA, sim.state.botAccount(request.app), false),
    );
    return { status: 204 };
  },

  'git/get-tree': async (request, sim) => {
    const repo = repositoryOf(request);
    const treeish = String(request.params.tree_sha);
    const sha = isSha(treeish) ? treeish : await resolveCommit(sim, repo, treeish);
    // GitHub: any value of `recursive` means recursive.
    const tree = await sim.git.tree(repo.fullName, sha, request.query.recursive !== undefined);
    if (!tree) throw notFound();
    return {
      status: 200,
      body: shapes.gitTree(repo, tree.sha, tree.entries, tree.truncated, sim.urls),
    };
  },

  'git/get-blob': async (request, sim) => {
    const repo = repositoryOf(request);
    const sha = String(request.params.file_sha);
    const content = isSha(sha) ? await sim.git.blob(repo.fullName, sha) : undefined;
    if (!content) throw notFound();
    return { status: 200, body: shapes.blob(repo, sha, content, sim.urls) };
  },

  'git/create-commit': async (request, sim) => {
    const repo = repositoryOf(request);
    const body = request.body as {
      message: string;
      tree: string;
      parents?: string[];
      author?: { name: string; email: string };
    };
    if (!isSha(body.tree) || (await sim.git.objectType(repo.fullName, body.tree)) !== 'tree') {
      throw new ApiError(422, `Tree SHA does not exist`);
    }
    for (const parent of body.parents ?? []) {
      if (!isSha(parent) || (await sim.git.objectType(repo.fullName, parent)) !== 'commit') {
        throw new ApiError(422, `Parent SHA does not exist or is not a commit object`);
      }
    }
    const bot = sim.person(sim.state.botAccount(request.app));
    const sha = await sim.git.commitTree(repo.fullName, {
      tree: body.tree,
      parents: body.parents ?? [],
      message: body.message,
      author: body.author ? { ...body.author, date: sim.clock.now() } : bot,
      committer: bot,
    });
    const info = (await sim.git.commitInfo(repo.fullName, sha))!;
    return { status: 201, body: shapes.gitCommit(repo, info, sim.urls) };
  },

  'git/get-commit': async (request, sim) => {
    const repo = repositoryOf(request);
    const sha = String(request.params.commit_sha);
    const info = isSha(sha) ? await sim.git.commitInfo(repo.fullName, sha) : undefined;
    if (!info) throw notFound();
    return { status: 200, body: shapes.gitCommit(repo, info, sim.urls) };
  },
};

// ---- pull requests ----------------------------------------------------------------------

async function pullRequestBody(sim: GitHubSimulator, repo: SimRepository, pr: SimPullRequest) {
  const headRepository = sim.state.repositories.get(pr.head.repositoryId)!;
  const { mergeable, state } = await sim.mergeability(pr);
  const comparison = await sim.git.compare(repo.fullName, pr.base.sha, pr.head.sha);
  return shapes.pullRequest(
    pr,
    {
      repository: repo,
      headRepository,
      labels: sim.state.labelsOf(pr),
      mergeable,
      mergeableState: state,
      commits: comparison.commits.length,
      additions: comparison.files.reduce((n, f) => n + f.additions, 0),
      deletions: comparison.files.reduce((n, f) => n + f.deletions, 0),
      changedFiles: comparison.files.length,
      comments: sim.comments(repo, pr.number).length,
      reviewComments: 0,
    },
    sim.urls,
    (r) => sim.cloneUrl(r),
  );
}

function pullOf(request: ApiRequest, sim: GitHubSimulator): SimPullRequest {
  const pr = sim.state.pullRequest(
    repositoryOf(request).id,
    num(request.params.pull_number ?? request.params.issue_number),
  );
  if (!pr) throw notFound();
  return pr;
}

const pulls: Record<string, Handler> = {
  'pulls/create': async (request, sim) => {
    const repo = repositoryOf(request);
    const body = request.body as {
      title?: string;
      head: string;
      base: string;
      body?: string;
      draft?: boolean;
    };
    const [headOwner, headBranch] = body.head.includes(':')
      ? (body.head.split(':', 2) as [string, string])
      : [repo.owner.login, body.head];
    const headRepository =
      headOwner.toLowerCase() === repo.owner.login.toLowerCase()
        ? repo
        : sim.state.repository(headOwner, repo.name);
    const headSha = headRepository && (await sim.branchSha(headRepository, headBranch));
    if (!headRepository || !headSha) {
      throw validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
    }
    const baseSha = await sim.branchSha(repo, body.base);
    if (!baseSha)
      throw validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
    if (
      headRepository.id === repo.id &&
      (await sim.git.isAncestor(repo.fullName, headSha, baseSha))
    ) {
      throw validationFailed([
        {
          resource: 'PullRequest',
          code: 'custom',
          message: `No commits between ${body.base} and ${headBranch}`,
        },
      ]);
    }
    const duplicate = sim.state.pullRequests.find(
      (p) =>
        p.repositoryId === repo.id &&
        p.state === 'open' &&
        p.head.repositoryId === headRepository.id &&
        p.head.ref === headBranch &&
        p.base.ref === body.base,
    );
    if (duplicate) {
      throw validationFailed([
        {
          resource: 'PullRequest',
          code: 'custom',
          message: `A pull request already exists for ${headOwner}:${headBranch}.`,
        },
      ]);
    }
    const bot = sim.state.botAccount(request.app);
    const pr = sim.createPullRequestRecord(repo, {
      title: body.title ?? headBranch,
      body: body.body ?? null,
      user: bot,
      draft: body.draft ?? false,
      head: { repositoryId: headRepository.id, ref: headBranch, sha: headSha },
      base: { ref: body.base, sha: baseSha },
    });
    await sim.syncPullHead(pr);
    background(sim, sim.emitPullRequest(pr, 'opened', bot));
    return { status: 201, body: await pullRequestBody(sim, repo, pr) };
  },

  'pulls/get': async (request, sim) => ({
    status: 200,
    body: await pullRequestBody(sim, repositoryOf(request), pullOf(request, sim)),
  }),

  'pulls/list': async (request, sim) => {
    const repo = repositoryOf(request);
    const state = (request.query.state as string | undefined) ?? 'open';
    const head = request.query.head as string | undefined;
    const base = request.query.base as string | undefined;
    const selected = sim.state.pullRequests.filter((pr) => {
      if (pr.repositoryId !== repo.id) return false;
      if (state !== 'all' && pr.state !== state) return false;
      if (base && pr.base.ref !== base) return false;
      if (head) {
        const headRepo = sim.state.repositories.get(pr.head.repositoryId)!;
        if (`${headRepo.owner.login}:${pr.head.ref}`.toLowerCase() !== head.toLowerCase())
          return false;
      }
      return true;
    });
    return {
      status: 200,
      body: selected.map((pr) =>
        shapes.pullRequestSimple(
          pr,
          {
            repository: repo,
            headRepository: sim.state.repositories.get(pr.head.repositoryId)!,
            labels: sim.state.labelsOf(pr),
          },
          sim.urls,
          (r) => sim.cloneUrl(r),
        ),
      ),
    };
  },

  'pulls/update': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const body = request.body as {
      title?: string;
      body?: string;
      state?: 'open' | 'closed';
      base?: string;
    };
    const bot = sim.state.botAccount(request.app);
    if (body.title !== undefined) pr.title = body.title;
    if (body.body !== undefined) pr.body = body.body;
    if (body.base !== undefined) {
      const baseSha = await sim.branchSha(repo, body.base);
      if (!baseSha)
        throw validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      pr.base = { ref: body.base, sha: baseSha };
    }
    pr.updatedAt = sim.clock.now();
    if (body.state === 'closed' && pr.state === 'open') {
      Object.assign(pr, { state: 'closed', closedAt: sim.clock.now() });
      background(sim, sim.emitPullRequest(pr, 'closed', bot));
    } else if (body.state === 'open' && pr.state === 'closed') {
      if (pr.merged) throw new ApiError(422, 'Cannot reopen a merged pull request');
      Object.assign(pr, { state: 'open', closedAt: undefined });
      background(sim, sim.emitPullRequest(pr, 'reopened', bot));
    }
    return { status: 200, body: await pullRequestBody(sim, repo, pr) };
  },

  'pulls/list-files': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const comparison = await sim.git.compare(repo.fullName, pr.base.sha, pr.head.sha);
    return {
      status: 200,
      body: comparison.files.map((f) => shapes.diffEntry(repo, f, pr.head.sha, sim.urls)),
    };
  },

  'pulls/list-commits': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const { commits } = await sim.git.compare(repo.fullName, pr.base.sha, pr.head.sha);
    // GitHub lists at most 250 commits of a pull request.
    const infos = await Promise.all(
      commits.slice(0, 250).map((sha) => sim.git.commitInfo(repo.fullName, sha)),
    );
    return {
      status: 200,
      body: infos.map((info) => shapes.commit(repo, info!, undefined, sim.urls)),
    };
  },

  'pulls/merge': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const body = (request.body ?? {}) as {
      commit_title?: string;
      commit_message?: string;
      sha?: string;
      merge_method?: 'merge' | 'squash' | 'rebase';
    };
    if (pr.state !== 'open' || pr.draft) throw new ApiError(405, 'Pull Request is not mergeable');
    if (body.sha && body.sha !== pr.head.sha) {
      throw new ApiError(409, 'Head branch was modified. Review and try the merge again.');
    }
    const baseRef = `refs/heads/${pr.base.ref}`;
    const baseSha = await resolveCommit(sim, repo, baseRef);
    const bot = sim.state.botAccount(request.app);
    const method = body.merge_method ?? 'merge';
    const title =
      body.commit_title ??
      (method === 'squash' ? `${pr.title} (#${pr.number})` : `Merge pull request #${pr.number}`);
    const message = body.commit_message ? `${title}\n\n${body.commit_message}` : title;
    const merged =
      method === 'merge'
        ? await sim.git.merge(repo.fullName, {
            base: baseSha,
            head: pr.head.sha,
            message,
            author: sim.person(bot),
          })
        : method === 'squash'
          ? await sim.git.squash(repo.fullName, {
              base: baseSha,
              head: pr.head.sha,
              message,
              author: sim.person(pr.user),
            })
          : await sim.git.rebase(repo.fullName, {
              base: baseSha,
              head: pr.head.sha,
              committer: sim.person(bot),
            });
    if (merged.kind !== 'merged') throw new ApiError(405, 'Pull Request is not mergeable');
    const moved = await sim.git.updateRef(repo.fullName, baseRef, merged.sha, {
      expectedOld: baseSha,
    });
    if (moved !== 'ok')
      throw new ApiError(409, 'Base branch was modified. Review and try the merge again.');
    const now = sim.clock.now();
    Object.assign(pr, {
      state: 'closed',
      merged: true,
      mergedAt: now,
      mergedBy: bot,
      mergeCommitSha: merged.sha,
      closedAt: now,
      updatedAt: now,
    });
    background(
      sim,
      (async () => {
        await sim.emitPullRequest(pr, 'closed', bot);
        await sim.refUpdated(repo, baseRef, baseSha, merged.sha, bot, false);
      })(),
    );
    return {
      status: 200,
      body: shapes.pullRequestMergeResult(merged.sha, true, 'Pull Request successfully merged'),
    };
  },

  'pulls/list-reviews': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    return {
      status: 200,
      body: sim.state.reviews
        .filter((r) => r.repositoryId === repo.id && r.pullNumber === pr.number)
        .map((r) => shapes.pullRequestReview(r, repo, sim.urls)),
    };
  },

  'pulls/create-review': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const body = (request.body ?? {}) as {
      body?: string;
      event?: 'APPROVE' | 'REQUEST_CHANGES' | 'COMMENT';
    };
    if ((body.event === 'REQUEST_CHANGES' || body.event === 'COMMENT') && !body.body) {
      throw new ApiError(
        422,
        `Unprocessable Entity: "Review Can not request changes on or comment on a pull request without a body"`,
      );
    }
    const state =
      body.event === 'APPROVE'
        ? 'APPROVED'
        : body.event === 'REQUEST_CHANGES'
          ? 'CHANGES_REQUESTED'
          : body.event === 'COMMENT'
            ? 'COMMENTED'
            : 'PENDING';
    const review = await sim.review(pr, {
      author: sim.state.botAccount(request.app).login,
      state,
      body: body.body ?? '',
    });
    return { status: 200, body: shapes.pullRequestReview(review, repo, sim.urls) };
  },
};

// ---- issues: comments, labels, reactions -------------------------------------------------

function commentOf(request: ApiRequest, sim: GitHubSimulator) {
  const repo = repositoryOf(request);
  const comment = sim.state.comments.find(
    (c) => c.id === num(request.params.comment_id) && c.repositoryId === repo.id,
  );
  if (!comment) throw notFound();
  return comment;
}

const issues: Record<string, Handler> = {
  'issues/create-comment': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    if (pr.locked) throw new ApiError(403, 'Unable to create comment because issue is locked.');
    const { body } = request.body as { body: string };
    const bot = sim.state.botAccount(request.app);
    const comment = sim.createCommentRecord(repo, pr.number, body, bot);
    background(sim, sim.emitIssueComment(comment, bot));
    return { status: 201, body: shapes.issueComment(comment, repo, sim.urls) };
  },

  'issues/update-comment': async (request, sim) => {
    const repo = repositoryOf(request);
    const comment = commentOf(request, sim);
    if (comment.user.id !== sim.state.botAccount(request.app).id) {
      throw new ApiError(403, 'Resource not accessible by integration');
    }
    comment.body = (request.body as { body: string }).body;
    comment.updatedAt = sim.clock.now();
    return { status: 200, body: shapes.issueComment(comment, repo, sim.urls) };
  },

  'issues/get-comment': async (request, sim) => ({
    status: 200,
    body: shapes.issueComment(commentOf(request, sim), repositoryOf(request), sim.urls),
  }),

  'issues/list-comments': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    return {
      status: 200,
      body: sim.comments(repo, pr.number).map((c) => shapes.issueComment(c, repo, sim.urls)),
    };
  },

  'issues/add-labels': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const body = request.body as { labels?: (string | { name: string })[] } | string[] | undefined;
    const names = (Array.isArray(body) ? body : (body?.labels ?? [])).map((l) =>
      typeof l === 'string' ? l : l.name,
    );
    const bot = sim.state.botAccount(request.app);
    for (const name of names) {
      const label = sim.ensureLabel(repo.id, name);
      if (pr.labelIds.includes(label.id)) continue;
      pr.labelIds.push(label.id);
      background(sim, sim.emitPullRequest(pr, 'labeled', bot, { label }));
    }
    return {
      status: 200,
      body: sim.state.labelsOf(pr).map((l) => shapes.label(l, repo, sim.urls)),
    };
  },

  'issues/remove-label': async (request, sim) => {
    const repo = repositoryOf(request);
    const pr = pullOf(request, sim);
    const name = String(request.params.name).toLowerCase();
    const label = sim.state.labelsOf(pr).find((l) => l.name.toLowerCase() === name);
    if (!label) throw new ApiError(404, 'Label does not exist');
    pr.labelIds = pr.labelIds.filter((id) => id !== label.id);
    return {
      status: 200,
      body: sim.state.labelsOf(pr).map((l) => shapes.label(l, repo, sim.urls)),
    };
  },

  'issues/list-labels-on-issue': async (request, sim) => {
    const repo = repositoryOf(request);
    return {
      status: 200,
      body: sim.state.labelsOf(pullOf(request, sim)).map((l) => shapes.label(l, repo, sim.urls)),
    };
  },

  'reactions/create-for-issue-comment': async (request, sim) => {
    const comment = commentOf(request, sim);
    const { content } = request.body as { content: SimReactionContent };
    const user = sim.state.botAccount(request.app);
    const existing = sim.state.reactions.find(
      (r) => r.commentId === comment.id && r.user.id === user.id && r.content === content,
    );
    if (existing) return { status: 200, body: shapes.reaction(existing, sim.urls) };
    const id = sim.state.nextId();
    const reaction = {
      id,
      nodeId: sim.state.nodeId('Reaction', id),
      commentId: comment.id,
      user,
      content,
      createdAt: sim.clock.now(),
    };
    sim.state.reactions.push(reaction);
    return { status: 201, body: shapes.reaction(reaction, sim.urls) };
  },
};

// ---- checks ----------------------------------------------------------------------------------

type CheckRunBody = {
  name?: string;
  head_sha?: string;
  details_url?: string;
  external_id?: string;
  status?: SimCheckStatus;
  started_at?: string;
  conclusion?: SimCheckConclusion;
  completed_at?: string;
  output?: {
    title?: string;
    summary?: string;
    text?: string;
    annotations?: {
      path: string;
      start_line: number;
      end_line: number;
      start_column?: number;
      end_column?: number;
      annotation_level: SimAnnotation['annotationLevel'];
      message: string;
      title?: string;
      raw_details?: string;
    }[];
  };
  actions?: { label: string; description: string; identifier: string }[];
};

async function suiteFor(
  sim: GitHubSimulator,
  repo: SimRepository,
  appId: number,
  headSha: string,
): Promise<SimCheckSuite> {
  const existing = sim.state.checkSuites.find(
    (s) => s.repositoryId === repo.id && s.appId === appId && s.headSha === headSha,
  );
  if (existing) return existing;
  const id = sim.state.nextId();
  const now = sim.clock.now();
  const branches = (await sim.git.refs(repo.fullName, 'refs/heads/')).filter(
    (r) => r.sha === headSha,
  );
  const suite: SimCheckSuite = {
    id,
    nodeId: sim.state.nodeId('CheckSuite', id),
    repositoryId: repo.id,
    appId,
    headSha,
    headBranch: branches[0]?.ref.slice('refs/heads/'.length) ?? null,
    status: 'queued',
    conclusion: null,
    createdAt: now,
    updatedAt: now,
  };
  sim.state.checkSuites.push(suite);
  return suite;
}

/** A suite's status follows its runs: completed when all are, with the most severe conclusion. */
function refreshSuite(sim: GitHubSimulator, suite: SimCheckSuite): void {
  const runs = sim.state.checkRuns.filter((r) => r.checkSuiteId === suite.id);
  const severity: SimCheckConclusion[] = [
    'action_required',
    'failure',
    'timed_out',
    'cancelled',
    'stale',
    'neutral',
    'success',
    'skipped',
  ];
  suite.updatedAt = sim.clock.now();
  if (runs.length === 0) return;
  if (runs.every((r) => r.status === 'completed')) {
    suite.status = 'completed';
    suite.conclusion = severity.find((c) => runs.some((r) => r.conclusion === c)) ?? 'neutral';
  } else {
    suite.status = runs.some((r) => r.status === 'in_progress' || r.status === 'completed')
      ? 'in_progress'
      : 'queued';
    suite.conclusion = null;
  }
}

function applyCheckRunBody(sim: GitHubSimulator, run: SimCheckRun, body: CheckRunBody): void {
  if (body.name !== undefined) run.name = body.name;
  if (body.details_url !== undefined) run.detailsUrl = body.details_url;
  if (body.external_id !== undefined) run.externalId = body.external_id;
  if (body.started_at !== undefined) run.startedAt = new Date(body.started_at);
  if (body.status !== undefined) run.status = body.status;
  if (body.conclusion !== undefined) {
    // GitHub: giving a conclusion completes the run.
    run.conclusion = body.conclusion;
    run.status = 'completed';
  }
  if (run.status === 'completed') {
    if (run.conclusion === null)
      throw new ApiError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.');
    run.completedAt = body.completed_at
      ? new Date(body.completed_at)
      : (run.completedAt ?? sim.clock.now());
  }
  if (run.status !== 'queued' && !run.startedAt) run.startedAt = sim.clock.now();
  if (body.output) {
    if (body.output.title !== undefined) run.output.title = body.output.title;
    if (body.output.summary !== undefined) run.output.summary = body.output.summary;
    if (body.output.text !== undefined) run.output.text = body.output.text;
    for (const a of body.output.annotations ?? []) {
      run.annotations.push({
        path: a.path,
        startLine: a.start_line,
        endLine: a.end_line,
        startColumn: a.start_column,
        endColumn: a.end_column,
        annotationLevel: a.annotation_level,
        message: a.message,
        title: a.title,
        rawDetails: a.raw_details,
      });
    }
  }
  if (body.actions !== undefined) run.actions = body.actions.map((a) => ({ ...a }));
}

function checkRunBody(sim: GitHubSimulator, run: SimCheckRun) {
  const repository = sim.state.repositories.get(run.repositoryId)!;
  return shapes.checkRun(
    run,
    {
      suite: sim.state.checkSuites.find((s) => s.id === run.checkSuiteId)!,
      app: sim.state.apps.get(run.appId)!,
      repository,
      pullRequests: sim.pullRequestsFor(repository, run.headSha),
    },
    sim.urls,
  );
}

async function checkSuiteBody(sim: GitHubSimulator, suite: SimCheckSuite) {
  const repository = sim.state.repositories.get(suite.repositoryId)!;
  return shapes.checkSuite(
    suite,
    {
      app: sim.state.apps.get(suite.appId)!,
      repository,
      headCommit: (await sim.git.commitInfo(repository.fullName, suite.headSha))!,
      latestCheckRunsCount: sim.state.checkRuns.filter((r) => r.checkSuiteId === suite.id).length,
      pullRequests: sim.pullRequestsFor(repository, suite.headSha),
    },
    sim.urls,
  );
}

function runOf(request: ApiRequest, sim: GitHubSimulator): SimCheckRun {
  const repo = repositoryOf(request);
  const run = sim.state.checkRuns.find(
    (r) => r.id === num(request.params.check_run_id) && r.repositoryId === repo.id,
  );
  if (!run) throw notFound();
  return run;
}

function suiteOf(request: ApiRequest, sim: GitHubSimulator): SimCheckSuite {
  const repo = repositoryOf(request);
  const suite = sim.state.checkSuites.find(
    (s) => s.id === num(request.params.check_suite_id) && s.repositoryId === repo.id,
  );
  if (!suite) throw notFound();
  return suite;
}

/** GitHub's list filter: `latest` keeps the newest run of each name. */
function latestOnly(runs: SimCheckRun[], filter: unknown): SimCheckRun[] {
  if (filter === 'all') return runs;
  const newest = new Map<string, SimCheckRun>();
  for (const run of runs) {
    const seen = newest.get(run.name);
    if (!seen || run.id > seen.id) newest.set(run.name, run);
  }
  return runs.filter((run) => newest.get(run.name) === run);
}

const checks: Record<string, Handler> = {
  'checks/create': async (request, sim) => {
    const repo = repositoryOf(request);
    const body = request.body as CheckRunBody & { name: string; head_sha: string };
    if (
      !isSha(body.head_sha) ||
      (await sim.git.objectType(repo.fullName, body.head_sha)) !== 'commit'
    ) {
      throw new ApiError(422, `No commit found for SHA: ${body.head_sha}`);
    }
    const suite = await suiteFor(sim, repo, request.app.id, body.head_sha);
    const id = sim.state.nextId();
    const run: SimCheckRun = {
      id,
      nodeId: sim.state.nodeId('CheckRun', id),
      repositoryId: repo.id,
      checkSuiteId: suite.id,
      appId: request.app.id,
      headSha: body.head_sha,
      name: body.name,
      status: 'queued',
      conclusion: null,
      startedAt: undefined,
      completedAt: undefined,
      externalId: null,
      detailsUrl: null,
      output: { title: null, summary: null, text: null },
      annotations: [],
      actions: [],
    };
    applyCheckRunBody(sim, run, body);
    sim.state.checkRuns.push(run);
    refreshSuite(sim, suite);
    return { status: 201, body: checkRunBody(sim, run) };
  },

  'checks/update': async (request, sim) => {
    const run = runOf(request, sim);
    if (run.appId !== request.app.id)
      throw new ApiError(
        403,
        'Invalid app_id `' +
          request.app.id +
          '` - check run can only be modified by the GitHub App that created it.',
      );
    applyCheckRunBody(sim, run, request.body as CheckRunBody);
    refreshSuite(
      sim,
      sim.state.checkSuites.find((s) => s.id === run.checkSuiteId)!,
    );
    return { status: 200, body: checkRunBody(sim, run) };
  },

  'checks/get': async (request, sim) => ({
    status: 200,
    body: checkRunBody(sim, runOf(request, sim)),
  }),

  'checks/list-annotations': async (request, sim) => {
    const repo = repositoryOf(request);
    const run = runOf(request, sim);
    return {
      status: 200,
      body: run.annotations.map((a) => shapes.checkAnnotation(a, run, repo, sim.urls)),
    };
  },

  'checks/list-for-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const sha = await resolveCommit(sim, repo, String(request.params.ref));
    let runs = sim.checkRuns(repo, sha);
    if (typeof request.query.check_name === 'string')
      runs = runs.filter((r) => r.name === request.query.check_name);
    if (typeof request.query.status === 'string')
      runs = runs.filter((r) => r.status === request.query.status);
    if (typeof request.query.app_id === 'number')
      runs = runs.filter((r) => r.appId === request.query.app_id);
    runs = latestOnly(runs, request.query.filter);
    return {
      status: 200,
      body: { total_count: runs.length, check_runs: runs.map((r) => checkRunBody(sim, r)) },
    };
  },

  'checks/rerequest-run': async (request, sim) => {
    const run = runOf(request, sim);
    background(sim, sim.rerequestCheckRun(run.id, sim.state.botAccount(request.app).login));
    return { status: 201, body: {} };
  },

  'checks/create-suite': async (request, sim) => {
    const repo = repositoryOf(request);
    const { head_sha } = request.body as { head_sha: string };
    if (!isSha(head_sha) || (await sim.git.objectType(repo.fullName, head_sha)) !== 'commit') {
      throw new ApiError(422, `No commit found for SHA: ${head_sha}`);
    }
    const existed = sim.state.checkSuites.some(
      (s) => s.repositoryId === repo.id && s.appId === request.app.id && s.headSha === head_sha,
    );
    const suite = await suiteFor(sim, repo, request.app.id, head_sha);
    return { status: existed ? 200 : 201, body: await checkSuiteBody(sim, suite) };
  },

  'checks/get-suite': async (request, sim) => ({
    status: 200,
    body: await checkSuiteBody(sim, suiteOf(request, sim)),
  }),

  'checks/list-suites-for-ref': async (request, sim) => {
    const repo = repositoryOf(request);
    const sha = await resolveCommit(sim, repo, String(request.params.ref));
    const suites = sim.state.checkSuites.filter(
      (s) => s.repositoryId === repo.id && s.headSha === sha,
    );
    return {
      status: 200,
      body: {
        total_count: suites.length,
        check_suites: await Promise.all(suites.map((s) => checkSuiteBody(sim, s))),
      },
    };
  },

  'checks/list-for-suite': async (request, sim) => {
    const suite = suiteOf(request, sim);
    const runs = latestOnly(
      sim.state.checkRuns.filter((r) => r.checkSuiteId === suite.id),
      request.query.filter,
    );
    return {
      status: 200,
      body: { total_count: runs.length, check_runs: runs.map((r) => checkRunBody(sim, r)) },
    };
  },

  'checks/rerequest-suite': async (request, sim) => {
    const suite = suiteOf(request, sim);
    background(sim, sim.rerequestCheckSuite(suite.id, sim.state.botAccount(request.app).login));
    return { status: 201, body: {} };
  },
};

const users: Record<string, Handler> = {
  'users/get-authenticated': async (request, sim) => {
    if (!request.user) throw new ApiError(403, 'Resource not accessible by integration');
    return { status: 200, body: shapes.publicUser(request.user, sim.urls) };
  },
};

const teams: Record<string, Handler> = {
  'teams/get-membership-for-user-in-org': async (request, sim) => {
    const org = String(request.params.org);
    const slug = String(request.params.team_slug);
    const login = String(request.params.username);
    // An installation sees the teams of its own organisation only.
    if (request.installation?.account.login.toLowerCase() !== org.toLowerCase()) throw notFound();
    if (!sim.state.isTeamMember(org, slug, login)) throw notFound();
    return {
      status: 200,
      body: {
        url: `${sim.urls.api}/organizations/${request.installation.account.id}/team/${slug}/memberships/${login}`,
        role: 'member',
        state: 'active',
      },
    };
  },
};

export const handlers: Record<string, Handler> = {
  ...apps,
  ...users,
  ...teams,
  ...repos,
  ...git,
  ...pulls,
  ...issues,
  ...checks,
};
