import { beforeAll, describe, expect, it } from 'vitest';
import type { CommitInfo, FileChange, TreeEntry } from '../src/sandbox/git.js';
import type {
  SimAccount,
  SimApp,
  SimCheckRun,
  SimCheckSuite,
  SimComment,
  SimInstallation,
  SimLabel,
  SimPullRequest,
  SimReaction,
  SimRepository,
  SimReview,
  SimUrls,
} from '../src/sandbox/model.js';
import { loadOpenApi, type OpenApi } from '../src/sandbox/openapi.js';
import {
  blob,
  branch,
  checkAnnotation,
  checkRun,
  checkSuite,
  collaboratorPermission,
  commit,
  commitComparison,
  contentDirectory,
  contentFile,
  diffEntry,
  fullRepository,
  gitCommit,
  gitRef,
  gitTree,
  installation,
  installationToken,
  integration,
  issueComment,
  label,
  pullRequest,
  pullRequestMergeResult,
  pullRequestReview,
  pullRequestSimple,
  reaction,
  repository,
  simpleUser,
  timestamp,
} from '../src/sandbox/rest-shapes.js';

const urls: SimUrls = { api: 'http://127.0.0.1:4010/api/v3', web: 'http://127.0.0.1:4010' };
const cloneUrls = (repo: SimRepository) => `http://127.0.0.1:4010/git/${repo.fullName}.git`;

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-02T03:04:05Z');
const sha = (digit: string) => digit.repeat(40);

const alice: SimAccount = {
  id: 101,
  nodeId: 'U_alice',
  login: 'alice',
  type: 'User',
  name: 'Alice Example',
  email: 'alice@example.com',
};
const acme: SimAccount = {
  id: 201,
  nodeId: 'O_acme',
  login: 'acme',
  type: 'Organization',
  name: 'Acme',
  email: 'ops@acme.example',
};
const bot: SimAccount = {
  id: 301,
  nodeId: 'BOT_tower',
  login: 'tower[bot]',
  type: 'Bot',
  name: 'tower[bot]',
  email: '301+tower[bot]@users.noreply.example',
};

const app: SimApp = {
  id: 7,
  nodeId: 'A_tower',
  slug: 'tower',
  name: 'Tower',
  owner: acme,
  publicKeyPem: '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n',
  webhookUrl: 'http://127.0.0.1:3000/api/github/webhooks',
  webhookSecret: 'secret',
  clientId: 'Iv23li0123456789abcd',
  clientSecret: '0123456789abcdef0123456789abcdef01234567',
  callbackUrl: undefined,
  permissions: { checks: 'write', contents: 'read', metadata: 'read', pull_requests: 'write' },
  events: ['check_run', 'check_suite', 'pull_request', 'push'],
  createdAt: t0,
  updatedAt: t1,
};

const repo: SimRepository = {
  id: 1001,
  nodeId: 'R_widgets',
  owner: acme,
  name: 'widgets',
  fullName: 'acme/widgets',
  private: true,
  defaultBranch: 'main',
  description: null,
  forkOf: undefined,
  createdAt: t0,
  updatedAt: t1,
  pushedAt: t1,
};
const fork: SimRepository = {
  ...repo,
  id: 1002,
  nodeId: 'R_fork',
  owner: alice,
  fullName: 'alice/widgets',
  private: false,
  description: 'Alice’s fork',
  forkOf: repo.id,
};

const installationRecord: SimInstallation = {
  id: 55,
  appId: app.id,
  account: acme,
  repositorySelection: 'selected',
  repositoryIds: [repo.id],
  createdAt: t0,
  updatedAt: t1,
  suspendedAt: undefined,
};

const person = (name: string, email: string, date: Date) => ({ name, email, date });
const baseCommit: CommitInfo = {
  sha: sha('a'),
  tree: sha('1'),
  parents: [],
  message: 'Initial commit',
  author: person('Alice Example', 'alice@example.com', t0),
  committer: person('Alice Example', 'alice@example.com', t0),
};
const headCommit: CommitInfo = {
  sha: sha('b'),
  tree: sha('2'),
  parents: [baseCommit.sha],
  message: 'Add widget\n\nWith a body.',
  author: person('Bob Builder', 'bob@example.com', t1),
  committer: person('Alice Example', 'alice@example.com', t1),
};
const mainCommit: CommitInfo = { ...headCommit, sha: sha('c'), message: 'Fix main' };

const files: FileChange[] = [
  {
    filename: 'src/widget.ts',
    status: 'added',
    additions: 3,
    deletions: 0,
    changes: 3,
    sha: sha('d'),
    patch: '@@ -0,0 +1,3 @@\n+a\n+b\n+c',
  },
  {
    filename: 'old name.txt',
    status: 'removed',
    additions: 0,
    deletions: 2,
    changes: 2,
    sha: null,
  },
  {
    filename: 'docs/new.md',
    status: 'renamed',
    additions: 1,
    deletions: 1,
    changes: 2,
    sha: sha('e'),
    previousFilename: 'docs/old.md',
  },
];

const labels: SimLabel[] = [
  {
    id: 11,
    nodeId: 'LA_bug',
    repositoryId: repo.id,
    name: 'bug',
    color: 'd73a4a',
    description: "Something isn't working",
    default: true,
  },
  {
    id: 12,
    nodeId: 'LA_ci',
    repositoryId: repo.id,
    name: 'tower: skip ci',
    color: 'ededed',
    description: null,
    default: false,
  },
];

const openPr: SimPullRequest = {
  id: 9001,
  nodeId: 'PR_1',
  repositoryId: repo.id,
  number: 1,
  title: 'Add widget',
  body: null,
  user: alice,
  state: 'open',
  draft: true,
  locked: false,
  head: { repositoryId: fork.id, ref: 'feature/widget', sha: headCommit.sha },
  base: { ref: 'main', sha: baseCommit.sha },
  labelIds: labels.map((l) => l.id),
  merged: false,
  mergedAt: undefined,
  mergedBy: undefined,
  mergeCommitSha: undefined,
  closedAt: undefined,
  createdAt: t0,
  updatedAt: t1,
};
const mergedPr: SimPullRequest = {
  ...openPr,
  id: 9002,
  nodeId: 'PR_2',
  number: 2,
  body: 'Merged one',
  user: acme,
  state: 'closed',
  draft: false,
  head: { repositoryId: repo.id, ref: 'topic', sha: headCommit.sha },
  merged: true,
  mergedAt: t1,
  mergedBy: alice,
  mergeCommitSha: sha('f'),
  closedAt: t1,
};

const suite: SimCheckSuite = {
  id: 4001,
  nodeId: 'CS_1',
  repositoryId: repo.id,
  appId: app.id,
  headSha: headCommit.sha,
  headBranch: 'topic',
  status: 'queued',
  conclusion: null,
  createdAt: t0,
  updatedAt: t1,
};

const queuedRun: SimCheckRun = {
  id: 5001,
  nodeId: 'CR_1',
  repositoryId: repo.id,
  checkSuiteId: suite.id,
  appId: app.id,
  headSha: headCommit.sha,
  name: 'tower / build',
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
const completedRun: SimCheckRun = {
  ...queuedRun,
  id: 5002,
  nodeId: 'CR_2',
  status: 'completed',
  conclusion: 'failure',
  startedAt: t0,
  completedAt: t1,
  externalId: 'job-42',
  detailsUrl: 'http://127.0.0.1:3000/jobs/42',
  output: { title: '1 error', summary: 'Build failed', text: 'See annotations' },
  annotations: [
    {
      path: 'src/widget.ts',
      startLine: 2,
      endLine: 2,
      startColumn: 5,
      endColumn: 9,
      annotationLevel: 'failure',
      message: 'Type error',
      title: 'tsc',
      rawDetails: 'TS2322',
    },
    {
      path: '.tower/jobs.yml',
      startLine: 1,
      endLine: 3,
      startColumn: undefined,
      endColumn: undefined,
      annotationLevel: 'warning',
      message: 'Unknown key',
      title: undefined,
      rawDetails: undefined,
    },
  ],
};

let openApi: OpenApi;
beforeAll(() => {
  openApi = loadOpenApi();
});

function expectValid(schema: string, value: unknown) {
  expect(openApi.checkComponent(schema, value)).toEqual([]);
}

describe('rest shapes', () => {
  it('formats timestamps as GitHub does', () => {
    expect(timestamp(t0)).toBe('2026-01-01T00:00:00Z');
  });

  it('shapes users, including bots', () => {
    const user = simpleUser(alice, urls);
    expectValid('simple-user', user);
    expect(user).toMatchObject({ id: 101, login: 'alice', node_id: 'U_alice', type: 'User' });
    expect(user.url).toBe(`${urls.api}/users/alice`);
    expect(user.html_url).toBe(`${urls.web}/alice`);
    expect(user.following_url).toBe(`${urls.api}/users/alice/following{/other_user}`);

    const botUser = simpleUser(bot, urls);
    expectValid('simple-user', botUser);
    expect(botUser.html_url).toBe(`${urls.web}/apps/tower`);
    expect(botUser.url).toBe(`${urls.api}/users/tower%5Bbot%5D`);
  });

  it('shapes the app, its installation and installation tokens', () => {
    const shaped = integration(app, urls);
    expectValid('integration', shaped);
    expect(shaped).toMatchObject({ id: 7, slug: 'tower', name: 'Tower', events: app.events });
    expect(shaped.owner.login).toBe('acme');
    expect(shaped.html_url).toBe(`${urls.web}/apps/tower`);
    expect(shaped.created_at).toBe('2026-01-01T00:00:00Z');

    const inst = installation(installationRecord, app, urls);
    expectValid('installation', inst);
    expect(inst).toMatchObject({
      id: 55,
      app_id: 7,
      app_slug: 'tower',
      target_id: acme.id,
      target_type: 'Organization',
      repository_selection: 'selected',
      suspended_at: null,
    });
    expect(inst.access_tokens_url).toBe(`${urls.api}/app/installations/55/access_tokens`);
    expect(inst.html_url).toBe(`${urls.web}/organizations/acme/settings/installations/55`);

    const personal = installation(
      { ...installationRecord, account: alice, suspendedAt: t1 },
      app,
      urls,
    );
    expectValid('installation', personal);
    expect(personal.html_url).toBe(`${urls.web}/settings/installations/55`);
    expect(personal.suspended_at).toBe('2026-01-02T03:04:05Z');

    const token = installationToken(
      {
        token: 'ghs_abc',
        expiresAt: t1,
        installation: installationRecord,
        permissions: { checks: 'write' },
      },
      urls,
      cloneUrls,
    );
    expectValid('installation-token', token);
    expect(token).toEqual({
      token: 'ghs_abc',
      expires_at: '2026-01-02T03:04:05Z',
      permissions: { checks: 'write' },
      repository_selection: 'selected',
    });

    const limited = installationToken(
      {
        token: 'ghs_def',
        expiresAt: t1,
        installation: installationRecord,
        permissions: { contents: 'read' },
        repositories: [repo],
      },
      urls,
      cloneUrls,
    );
    expectValid('installation-token', limited);
    expect(limited.repositories?.map((r) => r.full_name)).toEqual(['acme/widgets']);
  });

  it('shapes repositories, with a null description and as a fork', () => {
    const shaped = repository(repo, urls, cloneUrls(repo));
    expectValid('repository', shaped);
    expect(shaped).toMatchObject({
      id: 1001,
      node_id: 'R_widgets',
      name: 'widgets',
      full_name: 'acme/widgets',
      private: true,
      visibility: 'private',
      description: null,
      fork: false,
      default_branch: 'main',
      clone_url: 'http://127.0.0.1:4010/git/acme/widgets.git',
      pushed_at: '2026-01-02T03:04:05Z',
    });
    expect(shaped.url).toBe(`${urls.api}/repos/acme/widgets`);
    expect(shaped.html_url).toBe(`${urls.web}/acme/widgets`);
    expect(shaped.git_commits_url).toBe(`${urls.api}/repos/acme/widgets/git/commits{/sha}`);
    expect(shaped.ssh_url).toBe('git@127.0.0.1:acme/widgets.git');

    const full = fullRepository(repo, urls, cloneUrls(repo));
    expectValid('full-repository', full);
    expect(full.organization?.login).toBe('acme');
    expect(full).not.toHaveProperty('parent');

    const forked = fullRepository(fork, urls, cloneUrls(fork), {
      repository: repo,
      cloneUrl: cloneUrls(repo),
    });
    expectValid('full-repository', forked);
    expect(forked).toMatchObject({ id: 1002, fork: true, description: 'Alice’s fork' });
    expect(forked.parent?.full_name).toBe('acme/widgets');
    expect(forked.source?.id).toBe(1001);
    expect(forked).not.toHaveProperty('organization');
  });

  it('shapes git refs, trees and blobs', () => {
    const ref = gitRef(repo, 'refs/heads/feature/widget', headCommit.sha, urls);
    expectValid('git-ref', ref);
    expect(ref.ref).toBe('refs/heads/feature/widget');
    expect(ref.url).toBe(`${urls.api}/repos/acme/widgets/git/refs/heads/feature/widget`);
    expect(ref.object).toEqual({
      type: 'commit',
      sha: headCommit.sha,
      url: `${urls.api}/repos/acme/widgets/git/commits/${headCommit.sha}`,
    });

    const entries: TreeEntry[] = [
      { path: 'README.md', mode: '100644', type: 'blob', sha: sha('3'), size: 12 },
      { path: 'src', mode: '040000', type: 'tree', sha: sha('4') },
      { path: 'vendor/lib', mode: '160000', type: 'commit', sha: sha('5') },
    ];
    const tree = gitTree(repo, sha('2'), entries, false, urls);
    expectValid('git-tree', tree);
    expect(tree.sha).toBe(sha('2'));
    expect(tree.truncated).toBe(false);
    expect(tree.tree.map((e) => [e.path, e.type, e.size, e.url])).toEqual([
      ['README.md', 'blob', 12, `${urls.api}/repos/acme/widgets/git/blobs/${sha('3')}`],
      ['src', 'tree', undefined, `${urls.api}/repos/acme/widgets/git/trees/${sha('4')}`],
      ['vendor/lib', 'commit', undefined, undefined],
    ]);
    expectValid('git-tree', gitTree(repo, sha('2'), [], true, urls));

    const content = Buffer.from('x'.repeat(100));
    const shaped = blob(repo, sha('3'), content, urls);
    expectValid('blob', shaped);
    expect(shaped).toMatchObject({ sha: sha('3'), size: 100, encoding: 'base64' });
    expect(shaped.content.split('\n').map((line) => line.length)).toEqual([60, 60, 16, 0]);
    expect(Buffer.from(shaped.content, 'base64').equals(content)).toBe(true);
    expect(blob(repo, sha('3'), Buffer.alloc(0), urls).content).toBe('');
  });

  it('shapes file contents and directory listings', () => {
    const file = contentFile(
      repo,
      { path: '.tower/jobs.yml', sha: sha('3'), size: 5, content: Buffer.from('jobs:') },
      urls,
    );
    expectValid('content-file', file);
    expect(file).toMatchObject({
      type: 'file',
      name: 'jobs.yml',
      path: '.tower/jobs.yml',
      size: 5,
    });
    expect(Buffer.from(file.content, 'base64').toString()).toBe('jobs:');
    expect(file.url).toBe(`${urls.api}/repos/acme/widgets/contents/.tower/jobs.yml?ref=main`);
    expect(file.html_url).toBe(`${urls.web}/acme/widgets/blob/main/.tower/jobs.yml`);
    expect(file._links.git).toBe(`${urls.api}/repos/acme/widgets/git/blobs/${sha('3')}`);

    const atRef = contentFile(
      repo,
      { path: 'a b.txt', sha: sha('3'), size: 0, content: Buffer.alloc(0), ref: 'feature/x' },
      urls,
    );
    expectValid('content-file', atRef);
    expect(atRef.url).toBe(`${urls.api}/repos/acme/widgets/contents/a%20b.txt?ref=feature%2Fx`);
    expect(atRef.download_url).toBe(`${urls.web}/acme/widgets/raw/feature/x/a%20b.txt`);

    const children: TreeEntry[] = [
      { path: 'jobs.yml', mode: '100644', type: 'blob', sha: sha('3'), size: 5 },
      { path: '.tower/scripts', mode: '040000', type: 'tree', sha: sha('4') },
      { path: 'shared', mode: '160000', type: 'commit', sha: sha('5') },
    ];
    const listing = contentDirectory(repo, '.tower/', children, urls);
    expectValid('content-directory', listing);
    expect(listing.map((e) => [e.type, e.name, e.path, e.size])).toEqual([
      ['file', 'jobs.yml', '.tower/jobs.yml', 5],
      ['dir', 'scripts', '.tower/scripts', 0],
      ['file', 'shared', '.tower/shared', 0],
    ]);
    expect(listing[1]!.html_url).toBe(`${urls.web}/acme/widgets/tree/main/.tower/scripts`);
    expect(listing[1]!.download_url).toBeNull();
    expect(listing[2]!.git_url).toBeNull();

    const root = contentDirectory(repo, '', children.slice(0, 1), urls, 'topic');
    expectValid('content-directory', root);
    expect(root[0]!.path).toBe('jobs.yml');
    expect(root[0]!.url).toBe(`${urls.api}/repos/acme/widgets/contents/jobs.yml?ref=topic`);
  });

  it('shapes git commits and commits with their files', () => {
    const git = gitCommit(repo, headCommit, urls);
    expectValid('git-commit', git);
    expect(git).toMatchObject({ sha: headCommit.sha, message: headCommit.message });
    expect(git.author).toEqual({
      name: 'Bob Builder',
      email: 'bob@example.com',
      date: '2026-01-02T03:04:05Z',
    });
    expect(git.parents).toEqual([
      {
        sha: baseCommit.sha,
        url: `${urls.api}/repos/acme/widgets/git/commits/${baseCommit.sha}`,
        html_url: `${urls.web}/acme/widgets/commit/${baseCommit.sha}`,
      },
    ]);

    const listed = commit(repo, headCommit, undefined, urls);
    expectValid('commit', listed);
    expect(listed.author).toBeNull();
    expect(listed).not.toHaveProperty('files');

    const single = commit(repo, headCommit, files, urls, (p) =>
      p.email === alice.email ? alice : undefined,
    );
    expectValid('commit', single);
    expect(single.sha).toBe(headCommit.sha);
    expect(single.url).toBe(`${urls.api}/repos/acme/widgets/commits/${headCommit.sha}`);
    expect(single.author).toBeNull();
    expect(single.committer?.login).toBe('alice');
    expect(single.stats).toEqual({ additions: 4, deletions: 3, total: 7 });
    expect(single.files?.map((f) => f.filename)).toEqual(files.map((f) => f.filename));
  });

  it('shapes diff entries, including a removed and a renamed file', () => {
    const [added, removed, renamed] = files.map((f) => diffEntry(repo, f, headCommit.sha, urls));
    for (const entry of [added, removed, renamed]) expectValid('diff-entry', entry);
    expect(added).toMatchObject({ filename: 'src/widget.ts', status: 'added', additions: 3 });
    expect(added!.patch).toContain('+a');
    expect(removed).toMatchObject({ status: 'removed', sha: null, deletions: 2 });
    expect(removed).not.toHaveProperty('patch');
    expect(removed!.blob_url).toBe(
      `${urls.web}/acme/widgets/blob/${headCommit.sha}/old%20name.txt`,
    );
    expect(removed!.contents_url).toBe(
      `${urls.api}/repos/acme/widgets/contents/old%20name.txt?ref=${headCommit.sha}`,
    );
    expect(renamed!.previous_filename).toBe('docs/old.md');
  });

  it.each([
    { aheadBy: 0, behindBy: 0, status: 'identical', commits: [] },
    { aheadBy: 1, behindBy: 0, status: 'ahead', commits: [headCommit] },
    { aheadBy: 0, behindBy: 1, status: 'behind', commits: [] },
    { aheadBy: 1, behindBy: 1, status: 'diverged', commits: [headCommit] },
  ])('shapes a $status comparison', ({ aheadBy, behindBy, status, commits }) => {
    // main moved on (mainCommit) when the head is behind or has diverged.
    const base = behindBy > 0 ? mainCommit : baseCommit;
    const head = commits.at(-1)?.sha ?? baseCommit.sha;
    const shaped = commitComparison(
      repo,
      {
        base,
        mergeBase: baseCommit,
        commits,
        comparison: {
          mergeBase: baseCommit.sha,
          aheadBy,
          behindBy,
          commits: commits.map((c) => c.sha),
          files: commits.length ? files : [],
        },
        basehead: 'main...topic',
      },
      urls,
    );
    expectValid('commit-comparison', shaped);
    expect(shaped).toMatchObject({
      status,
      ahead_by: aheadBy,
      behind_by: behindBy,
      total_commits: commits.length,
    });
    expect(shaped.url).toBe(`${urls.api}/repos/acme/widgets/compare/main...topic`);
    expect(shaped.html_url).toBe(`${urls.web}/acme/widgets/compare/main...topic`);
    expect(shaped.diff_url).toBe(`${urls.web}/acme/widgets/compare/main...topic.diff`);
    expect(shaped.base_commit.sha).toBe(base.sha);
    expect(shaped.merge_base_commit.sha).toBe(baseCommit.sha);
    expect(shaped.permalink_url).toBe(
      `${urls.web}/acme/widgets/compare/acme:${base.sha}...acme:${head}`,
    );
    expect(shaped.commits.map((c) => c.sha)).toEqual(commits.map((c) => c.sha));
    expect(shaped.files).toHaveLength(commits.length ? files.length : 0);
  });

  it('shapes an open draft pull request from a fork', () => {
    const shaped = pullRequest(
      openPr,
      {
        repository: repo,
        headRepository: fork,
        labels,
        mergeable: null,
        mergeableState: 'draft',
        commits: 1,
        additions: 4,
        deletions: 3,
        changedFiles: 3,
        comments: 2,
        reviewComments: 0,
      },
      urls,
      cloneUrls,
    );
    expectValid('pull-request', shaped);
    expect(shaped).toMatchObject({
      id: 9001,
      number: 1,
      state: 'open',
      draft: true,
      merged: false,
      mergeable: null,
      mergeable_state: 'draft',
      merged_at: null,
      merge_commit_sha: null,
      merged_by: null,
      body: null,
      author_association: 'NONE',
      changed_files: 3,
      comments: 2,
    });
    expect(shaped.url).toBe(`${urls.api}/repos/acme/widgets/pulls/1`);
    expect(shaped.html_url).toBe(`${urls.web}/acme/widgets/pull/1`);
    expect(shaped.head).toMatchObject({
      label: 'alice:feature/widget',
      ref: 'feature/widget',
      sha: headCommit.sha,
    });
    expect(shaped.head.repo.full_name).toBe('alice/widgets');
    expect(shaped.head.repo.clone_url).toBe(cloneUrls(fork));
    expect(shaped.base.repo.full_name).toBe('acme/widgets');
    expect(shaped.base.label).toBe('acme:main');
    expect(shaped.labels.map((l) => [l.name, l.description])).toEqual([
      ['bug', "Something isn't working"],
      ['tower: skip ci', null],
    ]);
    expect(shaped.labels[1]!.url).toBe(
      `${urls.api}/repos/acme/widgets/labels/tower%3A%20skip%20ci`,
    );
  });

  it('shapes a merged pull request', () => {
    const shaped = pullRequest(
      mergedPr,
      {
        repository: repo,
        headRepository: repo,
        labels: [],
        mergeable: null,
        mergeableState: 'unknown',
        commits: 1,
        additions: 0,
        deletions: 0,
        changedFiles: 0,
        comments: 0,
        reviewComments: 1,
        authorAssociation: 'MEMBER',
      },
      urls,
      cloneUrls,
    );
    expectValid('pull-request', shaped);
    expect(shaped).toMatchObject({
      number: 2,
      state: 'closed',
      merged: true,
      draft: false,
      merged_at: '2026-01-02T03:04:05Z',
      closed_at: '2026-01-02T03:04:05Z',
      merge_commit_sha: sha('f'),
      author_association: 'MEMBER',
    });
    expect(shaped.merged_by?.login).toBe('alice');
  });

  it('shapes pull requests in lists', () => {
    const shaped = pullRequestSimple(
      mergedPr,
      { repository: repo, headRepository: repo, labels },
      urls,
      cloneUrls,
    );
    expectValid('pull-request-simple', shaped);
    expect(shaped).toMatchObject({ id: 9002, number: 2, author_association: 'OWNER' });
    // The list schema has no null description.
    expect(shaped.labels[1]!.description).toBe('');
    expect(shaped).not.toHaveProperty('mergeable');
  });

  it('shapes a merge result', () => {
    const shaped = pullRequestMergeResult(sha('f'), true, 'Pull Request successfully merged');
    expectValid('pull-request-merge-result', shaped);
    expect(shaped).toEqual({
      sha: sha('f'),
      merged: true,
      message: 'Pull Request successfully merged',
    });
  });

  it('shapes comments, reactions, labels and reviews', () => {
    const comment: SimComment = {
      id: 601,
      nodeId: 'IC_1',
      repositoryId: repo.id,
      issueNumber: 1,
      body: 'Tower: build failed',
      user: bot,
      createdAt: t0,
      updatedAt: t1,
    };
    const thumbsUp: SimReaction = {
      id: 701,
      nodeId: 'REA_1',
      commentId: comment.id,
      user: alice,
      content: '+1',
      createdAt: t1,
    };
    const shapedComment = issueComment(comment, repo, urls, { reactions: [thumbsUp] });
    expectValid('issue-comment', shapedComment);
    expect(shapedComment).toMatchObject({
      id: 601,
      body: 'Tower: build failed',
      author_association: 'NONE',
    });
    expect(shapedComment.user.login).toBe('tower[bot]');
    expect(shapedComment.url).toBe(`${urls.api}/repos/acme/widgets/issues/comments/601`);
    expect(shapedComment.html_url).toBe(`${urls.web}/acme/widgets/pull/1#issuecomment-601`);
    expect(shapedComment.issue_url).toBe(`${urls.api}/repos/acme/widgets/issues/1`);
    expect(shapedComment.reactions).toMatchObject({ total_count: 1, '+1': 1, heart: 0 });
    expectValid('issue-comment', issueComment(comment, repo, urls));

    const shapedReaction = reaction(thumbsUp, urls);
    expectValid('reaction', shapedReaction);
    expect(shapedReaction).toMatchObject({
      id: 701,
      content: '+1',
      created_at: '2026-01-02T03:04:05Z',
    });

    for (const l of labels) {
      const shapedLabel = label(l, repo, urls);
      expectValid('label', shapedLabel);
      expect(shapedLabel).toMatchObject({ id: l.id, name: l.name, description: l.description });
    }

    const review: SimReview = {
      id: 801,
      nodeId: 'PRR_1',
      repositoryId: repo.id,
      pullNumber: 1,
      user: acme,
      body: 'Looks good',
      state: 'APPROVED',
      commitId: headCommit.sha,
      submittedAt: t1,
    };
    const shapedReview = pullRequestReview(review, repo, urls);
    expectValid('pull-request-review', shapedReview);
    expect(shapedReview).toMatchObject({
      id: 801,
      state: 'APPROVED',
      commit_id: headCommit.sha,
      submitted_at: '2026-01-02T03:04:05Z',
      author_association: 'OWNER',
    });
    expect(shapedReview.html_url).toBe(`${urls.web}/acme/widgets/pull/1#pullrequestreview-801`);
    expect(shapedReview.pull_request_url).toBe(`${urls.api}/repos/acme/widgets/pulls/1`);

    const pending = pullRequestReview(
      { ...review, state: 'PENDING', submittedAt: undefined },
      repo,
      urls,
      { authorAssociation: 'COLLABORATOR' },
    );
    expectValid('pull-request-review', pending);
    expect(pending).not.toHaveProperty('submitted_at');
    expect(pending.author_association).toBe('COLLABORATOR');
  });

  it('shapes queued and completed check runs and their annotations', () => {
    const context = { suite, app, repository: repo, pullRequests: [mergedPr, openPr] };
    const queued = checkRun(queuedRun, context, urls);
    expectValid('check-run', queued);
    expect(queued).toMatchObject({
      id: 5001,
      name: 'tower / build',
      head_sha: headCommit.sha,
      status: 'queued',
      conclusion: null,
      started_at: null,
      completed_at: null,
      check_suite: { id: suite.id },
    });
    expect(queued.output).toEqual({
      title: null,
      summary: null,
      text: null,
      annotations_count: 0,
      annotations_url: `${urls.api}/repos/acme/widgets/check-runs/5001/annotations`,
    });
    expect(queued.url).toBe(`${urls.api}/repos/acme/widgets/check-runs/5001`);
    expect(queued.html_url).toBe(`${urls.web}/acme/widgets/runs/5001`);
    expect(queued.app.id).toBe(app.id);
    // The fork pull request is left out, as GitHub does.
    expect(queued.pull_requests).toEqual([
      {
        id: 9002,
        number: 2,
        url: `${urls.api}/repos/acme/widgets/pulls/2`,
        head: {
          ref: 'topic',
          sha: headCommit.sha,
          repo: { id: repo.id, url: `${urls.api}/repos/acme/widgets`, name: 'widgets' },
        },
        base: {
          ref: 'main',
          sha: baseCommit.sha,
          repo: { id: repo.id, url: `${urls.api}/repos/acme/widgets`, name: 'widgets' },
        },
      },
    ]);

    const completed = checkRun(completedRun, context, urls);
    expectValid('check-run', completed);
    expect(completed).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      started_at: '2026-01-01T00:00:00Z',
      completed_at: '2026-01-02T03:04:05Z',
      external_id: 'job-42',
      details_url: 'http://127.0.0.1:3000/jobs/42',
    });
    expect(completed.output).toMatchObject({ title: '1 error', annotations_count: 2 });

    const [first, second] = completedRun.annotations.map((a) =>
      checkAnnotation(a, completedRun, repo, urls),
    );
    for (const a of [first, second]) expectValid('check-annotation', a);
    expect(first).toMatchObject({
      path: 'src/widget.ts',
      start_column: 5,
      title: 'tsc',
      annotation_level: 'failure',
    });
    expect(first!.blob_href).toBe(`${urls.web}/acme/widgets/blob/${headCommit.sha}/src/widget.ts`);
    expect(second).toMatchObject({
      start_column: null,
      end_column: null,
      title: null,
      raw_details: null,
    });
  });

  it('shapes check suites', () => {
    const shaped = checkSuite(
      suite,
      {
        app,
        repository: repo,
        headCommit,
        latestCheckRunsCount: 2,
        pullRequests: [mergedPr],
      },
      urls,
    );
    expectValid('check-suite', shaped);
    expect(shaped).toMatchObject({
      id: 4001,
      head_sha: headCommit.sha,
      head_branch: 'topic',
      status: 'queued',
      conclusion: null,
      latest_check_runs_count: 2,
      after: headCommit.sha,
    });
    expect(shaped.url).toBe(`${urls.api}/repos/acme/widgets/check-suites/4001`);
    expect(shaped.check_runs_url).toBe(
      `${urls.api}/repos/acme/widgets/check-suites/4001/check-runs`,
    );
    expect(shaped.repository.full_name).toBe('acme/widgets');
    expect(shaped.head_commit).toMatchObject({ id: headCommit.sha, tree_id: headCommit.tree });
    expect(shaped.pull_requests.map((p) => p.number)).toEqual([2]);

    const done = checkSuite(
      { ...suite, status: 'completed', conclusion: 'success', headBranch: null },
      { app, repository: repo, headCommit, latestCheckRunsCount: 0, pullRequests: [] },
      urls,
    );
    expectValid('check-suite', done);
    expect(done).toMatchObject({ head_branch: null, conclusion: 'success', pull_requests: [] });
  });

  it.each([
    { role: 'admin', permission: 'admin', flags: [true, true, true, true, true] },
    { role: 'maintain', permission: 'write', flags: [false, true, true, true, true] },
    { role: 'write', permission: 'write', flags: [false, false, true, true, true] },
    { role: 'triage', permission: 'read', flags: [false, false, false, true, true] },
    { role: 'read', permission: 'read', flags: [false, false, false, false, true] },
    { role: 'none', permission: 'none', flags: [false, false, false, false, false] },
  ] as const)('shapes the $role collaborator permission', ({ role, permission, flags }) => {
    const shaped = collaboratorPermission(alice, role, urls);
    expectValid('repository-collaborator-permission', shaped);
    expect(shaped.permission).toBe(permission);
    expect(shaped.role_name).toBe(role);
    expect(shaped.user).toMatchObject({ login: 'alice', id: alice.id, role_name: role });
    const { admin, maintain, push, triage, pull } = shaped.user.permissions;
    expect([admin, maintain, push, triage, pull]).toEqual(flags);
  });

  it.each([true, false])('shapes a branch, protected: %s', (isProtected) => {
    const shaped = branch(repo, 'release/1', headCommit, isProtected, urls);
    expectValid('branch-with-protection', shaped);
    expect(shaped).toMatchObject({
      name: 'release/1',
      protected: isProtected,
      protection: { enabled: isProtected },
      protection_url: `${urls.api}/repos/acme/widgets/branches/release/1/protection`,
    });
    expect(shaped.commit.sha).toBe(headCommit.sha);
  });

  it('is caught when a shape breaks its schema', () => {
    const withoutId: Partial<ReturnType<typeof checkRun>> = checkRun(
      completedRun,
      { suite, app, repository: repo, pullRequests: [] },
      urls,
    );
    delete withoutId.id;
    expect(openApi.checkComponent('check-run', withoutId)).toEqual([
      "(root) must have required property 'id'",
    ]);
    const badUrl = { ...simpleUser(alice, urls), url: 'not a url' };
    expect(openApi.checkComponent('simple-user', badUrl)).not.toEqual([]);
  });
});
