import { describe, expect, it } from 'vitest';
import type {
  SimAccount,
  SimApp,
  SimCheckRun,
  SimCheckSuite,
  SimComment,
  SimInstallation,
  SimLabel,
  SimPullRequest,
  SimReview,
  SimRepository,
  SimUrls,
} from '../src/sandbox/model.js';
import {
  checkRunPayload,
  checkSuitePayload,
  checkWebhook,
  installationPayload,
  installationRepositoriesPayload,
  issueCommentPayload,
  pullRequestPayload,
  pullRequestReviewPayload,
  pushPayload,
  type RepoContext,
  type WebhookEvent,
} from '../src/sandbox/webhook-payloads.js';

const urls: SimUrls = { api: 'http://127.0.0.1:4010/api/v3', web: 'http://127.0.0.1:4010' };
const t0 = new Date('2024-03-01T10:00:00.123Z');
const t1 = new Date('2024-03-01T10:05:00Z');

const account = (id: number, login: string, type: SimAccount['type'] = 'User'): SimAccount => ({
  id,
  nodeId: `U_${login}`,
  login,
  type,
  name: `${login} name`,
  email: `${login}@example.test`,
});
const acme = account(9001, 'acme', 'Organization');
const alice = account(9002, 'alice');
const bob = account(9003, 'bob');
const towerBot = account(9004, 'tower-ci[bot]', 'Bot');

const repo = (id: number, owner: SimAccount, name: string, forkOf?: number): SimRepository => ({
  id,
  nodeId: `R_${id}`,
  owner,
  name,
  fullName: `${owner.login}/${name}`,
  private: id % 2 === 0,
  defaultBranch: 'main',
  description: 'a test repository',
  forkOf,
  createdAt: t0,
  updatedAt: t1,
  pushedAt: t1,
});
const widgets = repo(7001, acme, 'widgets');
const bobsFork = repo(7002, bob, 'widgets', widgets.id);
const gadgets = repo(7003, alice, 'gadgets');

const app: SimApp = {
  id: 501,
  nodeId: 'A_501',
  slug: 'tower-ci',
  name: 'Tower CI',
  owner: acme,
  publicKeyPem: '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----',
  webhookUrl: 'http://127.0.0.1:3000/api/github/webhooks',
  webhookSecret: 'secret',
  clientId: 'Iv23li0123456789abcd',
  clientSecret: '0123456789abcdef0123456789abcdef01234567',
  callbackUrl: undefined,
  permissions: { checks: 'write', contents: 'write', pull_requests: 'write', metadata: 'read' },
  events: ['check_run', 'check_suite', 'issue_comment', 'pull_request', 'push'],
  createdAt: t0,
  updatedAt: t1,
};

const installation: SimInstallation = {
  id: 601,
  appId: app.id,
  account: acme,
  repositorySelection: 'selected',
  repositoryIds: [widgets.id],
  createdAt: t0,
  updatedAt: t1,
  suspendedAt: undefined,
};

const bug: SimLabel = {
  id: 801,
  nodeId: 'LA_801',
  repositoryId: widgets.id,
  name: 'needs review',
  color: 'ededed',
  description: null,
  default: false,
};
const land: SimLabel = {
  ...bug,
  id: 802,
  nodeId: 'LA_802',
  name: 'autoland',
  description: 'Land it',
};

const sha = (c: string) => c.repeat(40);
const pull = (overrides: Partial<SimPullRequest> = {}): SimPullRequest => ({
  id: 9101,
  nodeId: 'PR_9101',
  repositoryId: widgets.id,
  number: 42,
  title: 'Make widgets faster',
  body: 'Faster widgets.',
  user: bob,
  state: 'open',
  draft: false,
  locked: false,
  head: { repositoryId: bobsFork.id, ref: 'fast', sha: sha('a') },
  base: { ref: 'main', sha: sha('b') },
  labelIds: [bug.id],
  merged: false,
  mergedAt: undefined,
  mergedBy: undefined,
  mergeCommitSha: undefined,
  closedAt: undefined,
  createdAt: t0,
  updatedAt: t1,
  ...overrides,
});
const samePull = pull({
  id: 9102,
  nodeId: 'PR_9102',
  number: 43,
  user: alice,
  head: { repositoryId: widgets.id, ref: 'feature', sha: sha('c') },
});

const ctx: RepoContext = {
  repository: widgets,
  installation,
  sender: alice,
  urls,
  cloneUrl: `${urls.web}/acme/widgets.git`,
};

const suite: SimCheckSuite = {
  id: 1101,
  nodeId: 'CS_1101',
  repositoryId: widgets.id,
  appId: app.id,
  headSha: sha('c'),
  headBranch: 'feature',
  status: 'completed',
  conclusion: 'success',
  createdAt: t0,
  updatedAt: t1,
};
const run: SimCheckRun = {
  id: 1201,
  nodeId: 'CR_1201',
  repositoryId: widgets.id,
  checkSuiteId: suite.id,
  appId: app.id,
  headSha: sha('c'),
  name: 'tower / build',
  status: 'completed',
  conclusion: 'failure',
  startedAt: t0,
  completedAt: t1,
  externalId: 'job-17',
  detailsUrl: 'http://127.0.0.1:3000/jobs/17',
  output: { title: 'Build failed', summary: '1 error', text: null },
  annotations: [],
  actions: [{ label: 'Retry', description: 'Run it again', identifier: 'retry' }],
};

const person = { name: 'Alice', email: 'alice@example.test', date: t0 };
const commit = (c: string, files: string[]) => ({
  sha: sha(c),
  tree: sha('e'),
  message: `commit ${c}`,
  author: person,
  committer: { ...person, date: t1 },
  added: files,
  removed: [],
  modified: [],
});

/** Traces of the examples' identities: none may survive into a payload. */
const exampleIdentity =
  /github\.com|githubusercontent|codertocat|hello-world|octocat|octocoders|electron|21031067|186853002|957387|690857|29310|279147437|128620228|118578147|492700400|1362934389|ec26c3e57ca3|f95f852bd8fc|6113728f27ae|31b122c26a97/i;

function expectValid(event: WebhookEvent) {
  expect(checkWebhook(event)).toEqual([]);
  expect(JSON.stringify(event.payload)).not.toMatch(exampleIdentity);
}

function expectRepoEvent(event: WebhookEvent) {
  expectValid(event);
  expect(event.payload).toMatchObject({
    repository: {
      id: widgets.id,
      full_name: 'acme/widgets',
      owner: { login: 'acme', type: 'Organization' },
      clone_url: ctx.cloneUrl,
      html_url: `${urls.web}/acme/widgets`,
    },
    // GitHub Apps always learn which installation a delivery is for.
    installation: { id: installation.id, node_id: expect.any(String) },
    organization: { login: 'acme', id: acme.id },
    sender: { login: 'alice', url: `${urls.api}/users/alice` },
  });
}

describe('push', () => {
  it('describes a branch update with its commits', () => {
    const event = pushPayload({
      ...ctx,
      ref: 'refs/heads/main',
      before: sha('1'),
      after: sha('2'),
      created: false,
      deleted: false,
      forced: false,
      commits: [commit('3', ['a.txt']), commit('2', ['b.txt'])],
      pusher: alice,
    });
    expect(event.name).toBe('push');
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      ref: 'refs/heads/main',
      before: sha('1'),
      after: sha('2'),
      commits: [
        { id: sha('3'), tree_id: sha('e'), added: ['a.txt'], timestamp: '2024-03-01T10:00:00Z' },
        { id: sha('2'), url: `${urls.web}/acme/widgets/commit/${sha('2')}` },
      ],
      head_commit: { id: sha('2'), message: 'commit 2' },
      pusher: { name: 'alice', email: alice.email },
      compare: `${urls.web}/acme/widgets/compare/111111111111...222222222222`,
      // Push payloads keep GitHub's quirks: Unix-time dates, the web URL as url, the owner's name.
      repository: {
        created_at: Math.floor(t0.getTime() / 1000),
        url: `${urls.web}/acme/widgets`,
        organization: 'acme',
        owner: { name: acme.name, email: acme.email },
      },
    });
  });

  it('describes created and deleted branches', () => {
    const created = pushPayload({
      ...ctx,
      ref: 'refs/heads/feature',
      before: sha('0'),
      after: sha('4'),
      created: true,
      deleted: false,
      forced: false,
      commits: [commit('4', [])],
      pusher: alice,
    });
    expectRepoEvent(created);
    expect(created.payload.compare).toBe(`${urls.web}/acme/widgets/compare/feature`);
    const deleted = pushPayload({
      ...ctx,
      ref: 'refs/heads/feature',
      before: sha('4'),
      after: sha('0'),
      created: false,
      deleted: true,
      forced: false,
      commits: [],
      pusher: alice,
    });
    expectRepoEvent(deleted);
    expect(deleted.payload).toMatchObject({ deleted: true, commits: [], head_commit: null });
  });

  it('leaves out organization for a user-owned repository', () => {
    const event = pushPayload({
      ...ctx,
      repository: gadgets,
      cloneUrl: `${urls.web}/alice/gadgets.git`,
      ref: 'refs/heads/main',
      before: sha('1'),
      after: sha('2'),
      created: false,
      deleted: false,
      forced: true,
      commits: [commit('2', [])],
      pusher: alice,
    });
    expectValid(event);
    expect(event.payload).not.toHaveProperty('organization');
    expect(event.payload.repository).not.toHaveProperty('organization');
    expect(event.payload).toMatchObject({
      forced: true,
      repository: { full_name: 'alice/gadgets', private: false, owner: { type: 'User' } },
    });
  });
});

describe('pull_request', () => {
  const base = {
    ...ctx,
    pullRequest: pull(),
    headRepository: bobsFork,
    labels: [bug],
    mergeable: true,
    commits: 3,
    additions: 10,
    deletions: 2,
    changedFiles: 4,
  };
  const closedAt = { state: 'closed' as const, closedAt: t1 };
  const cases = [
    pullRequestPayload({ ...base, action: 'opened' }),
    pullRequestPayload({ ...base, action: 'synchronize', before: sha('9') }),
    pullRequestPayload({ ...base, action: 'reopened', mergeable: false }),
    pullRequestPayload({ ...base, action: 'closed', pullRequest: pull(closedAt) }),
    pullRequestPayload({
      ...base,
      action: 'closed',
      mergeable: null,
      pullRequest: pull({
        ...closedAt,
        merged: true,
        mergedAt: t1,
        mergedBy: alice,
        mergeCommitSha: sha('d'),
      }),
    }),
    pullRequestPayload({ ...base, action: 'labeled', labels: [bug, land], label: land }),
    pullRequestPayload({ ...base, action: 'edited', changes: { title: { from: 'Old title' } } }),
    pullRequestPayload({ ...base, action: 'edited' }),
  ];

  it.each(cases.map((c) => [c.payload.action, c] as const))(
    '%s is valid and reflects the pull request',
    (_, event) => {
      expect(event.name).toBe('pull_request');
      expectRepoEvent(event);
      expect(event.payload).toMatchObject({
        number: 42,
        pull_request: {
          number: 42,
          id: 9101,
          node_id: 'PR_9101',
          title: 'Make widgets faster',
          body: 'Faster widgets.',
          url: `${urls.api}/repos/acme/widgets/pulls/42`,
          html_url: `${urls.web}/acme/widgets/pull/42`,
          user: { login: 'bob' },
          commits: 3,
          additions: 10,
          deletions: 2,
          changed_files: 4,
          head: {
            ref: 'fast',
            sha: sha('a'),
            label: 'bob:fast',
            user: { login: 'bob' },
            repo: {
              full_name: 'bob/widgets',
              fork: true,
              clone_url: `${urls.web}/bob/widgets.git`,
            },
          },
          base: {
            ref: 'main',
            sha: sha('b'),
            label: 'acme:main',
            repo: { full_name: 'acme/widgets' },
          },
          _links: { statuses: { href: `${urls.api}/repos/acme/widgets/statuses/${sha('a')}` } },
        },
      });
    },
  );

  it('carries action-specific fields', () => {
    const [opened, sync, reopened, closed, merged, labeled, edited, editedBare] = cases.map(
      (c) => c.payload,
    );
    expect(opened).toMatchObject({
      pull_request: {
        state: 'open',
        labels: [{ id: 801, name: 'needs review', description: null }],
        mergeable: true,
        mergeable_state: 'clean',
        merged_by: null,
      },
    });
    expect(opened).not.toHaveProperty('label');
    expect(opened).not.toHaveProperty('before');
    expect(opened).not.toHaveProperty('changes');
    expect(sync).toMatchObject({ before: sha('9'), after: sha('a') });
    expect(reopened).toMatchObject({
      action: 'reopened',
      pull_request: { state: 'open', mergeable: false, mergeable_state: 'dirty' },
    });
    expect(closed).toMatchObject({
      pull_request: { state: 'closed', merged: false, closed_at: '2024-03-01T10:05:00Z' },
    });
    expect(merged).toMatchObject({
      pull_request: {
        merged: true,
        merged_at: '2024-03-01T10:05:00Z',
        merge_commit_sha: sha('d'),
        merged_by: { login: 'alice' },
        mergeable_state: 'unknown',
      },
    });
    expect(labeled).toMatchObject({
      label: { id: 802, name: 'autoland', url: `${urls.api}/repos/acme/widgets/labels/autoland` },
      pull_request: { labels: [{ name: 'needs review' }, { name: 'autoland' }] },
    });
    expect(edited).toMatchObject({ changes: { title: { from: 'Old title' } } });
    expect(editedBare).toMatchObject({ changes: {} });
  });

  it('uses the context clone URL for a head in the same repository', () => {
    const event = pullRequestPayload({
      ...base,
      action: 'opened',
      pullRequest: samePull,
      headRepository: widgets,
    });
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      pull_request: {
        head: { repo: { full_name: 'acme/widgets', fork: false, clone_url: ctx.cloneUrl } },
      },
    });
  });
});

describe('pull_request_review', () => {
  const review = (state: SimReview['state'], body = 'Looks good'): SimReview => ({
    id: 1501,
    nodeId: 'PRR_1501',
    repositoryId: widgets.id,
    pullNumber: 42,
    user: bob,
    body,
    state,
    commitId: pull().head.sha,
    submittedAt: t1,
  });
  const reviewEvent = (action: 'submitted' | 'dismissed', r: SimReview) =>
    pullRequestReviewPayload({
      ...ctx,
      action,
      pullRequest: pull(),
      headRepository: widgets,
      labels: [],
      review: r,
    });
  it.each([
    ['submitted', 'APPROVED', 'approved'],
    ['submitted', 'CHANGES_REQUESTED', 'changes_requested'],
    ['dismissed', 'DISMISSED', 'dismissed'],
  ] as const)('%s (%s) is valid and reflects the review', (action, state, shown) => {
    const event = reviewEvent(action, review(state));
    expect(event.name).toBe('pull_request_review');
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      action,
      review: {
        id: 1501,
        node_id: 'PRR_1501',
        state: shown,
        body: 'Looks good',
        user: { login: 'bob' },
        submitted_at: '2024-03-01T10:05:00Z',
        html_url: `${urls.web}/acme/widgets/pull/42#pullrequestreview-1501`,
        pull_request_url: `${urls.api}/repos/acme/widgets/pulls/42`,
      },
      pull_request: { number: 42, url: `${urls.api}/repos/acme/widgets/pulls/42` },
    });
    // The short form of a pull request: no counts.
    expect(event.payload.pull_request).not.toHaveProperty('commits');
  });

  it('gives an empty review body as null, as GitHub does', () => {
    const event = reviewEvent('submitted', review('APPROVED', ''));
    expectRepoEvent(event);
    expect((event.payload.review as { body: unknown }).body).toBeNull();
  });
});

describe('issue_comment', () => {
  const comment: SimComment = {
    id: 1301,
    nodeId: 'IC_1301',
    repositoryId: widgets.id,
    issueNumber: 42,
    body: '/tower retry',
    user: alice,
    createdAt: t0,
    updatedAt: t1,
  };
  it.each(['created', 'edited', 'deleted'] as const)(
    '%s is valid and reflects the comment',
    (action) => {
      const event = issueCommentPayload({
        ...ctx,
        action,
        pullRequest: pull(),
        labels: [bug],
        comment,
        previousBody: '/tower',
      });
      expect(event.name).toBe('issue_comment');
      expectRepoEvent(event);
      expect(event.payload).toMatchObject({
        action,
        comment: {
          id: 1301,
          node_id: 'IC_1301',
          body: '/tower retry',
          user: { login: 'alice' },
          author_association: 'NONE',
          issue_url: `${urls.api}/repos/acme/widgets/issues/42`,
          html_url: `${urls.web}/acme/widgets/pull/42#issuecomment-1301`,
        },
        // The pull request, seen as an issue.
        issue: {
          number: 42,
          title: 'Make widgets faster',
          state: 'open',
          user: { login: 'bob' },
          labels: [{ name: 'needs review' }],
          pull_request: { url: `${urls.api}/repos/acme/widgets/pulls/42`, merged_at: null },
        },
      });
      if (action === 'edited') expect(event.payload.changes).toEqual({ body: { from: '/tower' } });
      else expect(event.payload).not.toHaveProperty('changes');
    },
  );
});

describe('issue_comment on a closed pull request', () => {
  it('reflects the closing, the merge, and the owner as author', () => {
    const merged = pull({
      repositoryId: gadgets.id,
      state: 'closed',
      closedAt: t1,
      merged: true,
      mergedAt: t1,
      mergedBy: alice,
      user: alice,
      head: { repositoryId: gadgets.id, ref: 'x', sha: sha('a') },
    });
    const event = issueCommentPayload({
      ...ctx,
      repository: gadgets,
      cloneUrl: `${urls.web}/alice/gadgets.git`,
      action: 'edited',
      pullRequest: merged,
      labels: [],
      comment: {
        id: 1302,
        nodeId: 'IC_1302',
        repositoryId: gadgets.id,
        issueNumber: 42,
        body: 'thanks',
        user: alice,
        createdAt: t0,
        updatedAt: t1,
      },
    });
    expectValid(event);
    expect(event.payload).not.toHaveProperty('organization');
    expect(event.payload).toMatchObject({
      changes: {},
      issue: {
        state: 'closed',
        closed_at: '2024-03-01T10:05:00Z',
        author_association: 'OWNER',
        pull_request: { merged_at: '2024-03-01T10:05:00Z' },
      },
      comment: { author_association: 'OWNER', body: 'thanks' },
    });
  });
});

describe('check_run', () => {
  const base = { ...ctx, checkRun: run, checkSuite: suite, app, pullRequests: [samePull, pull()] };
  const queued: SimCheckRun = {
    ...run,
    status: 'queued',
    conclusion: null,
    startedAt: undefined,
    completedAt: undefined,
    detailsUrl: null,
    externalId: null,
  };
  it.each([
    ['created', queued],
    ['completed', run],
    ['rerequested', run],
    ['requested_action', run],
  ] as const)('%s is valid and reflects the check run', (action, checkRun) => {
    const event = checkRunPayload({
      ...base,
      action,
      checkRun,
      requestedAction: { identifier: 'retry' },
    });
    expect(event.name).toBe('check_run');
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      action,
      check_run: {
        id: 1201,
        node_id: 'CR_1201',
        name: 'tower / build',
        head_sha: sha('c'),
        status: checkRun.status,
        conclusion: checkRun.conclusion,
        external_id: checkRun.externalId ?? '',
        url: `${urls.api}/repos/acme/widgets/check-runs/1201`,
        output: { title: checkRun.output.title, annotations_count: 0 },
        app: { id: 501, slug: 'tower-ci', owner: { login: 'acme' } },
        check_suite: { id: 1101, head_branch: 'feature', after: sha('c') },
        // Only pull requests from the repository itself, as on GitHub.
        pull_requests: [{ number: 43, head: { sha: sha('c') } }],
      },
    });
    if (action === 'requested_action') {
      expect(event.payload.requested_action).toEqual({ identifier: 'retry' });
    } else {
      expect(event.payload).not.toHaveProperty('requested_action');
    }
  });
});

describe('check_suite', () => {
  const headCommit = {
    sha: sha('c'),
    tree: sha('e'),
    message: 'Add feature',
    author: person,
    committer: person,
  };
  const queued: SimCheckSuite = { ...suite, status: 'queued', conclusion: null };
  it.each([
    ['requested', queued],
    ['rerequested', suite],
    ['completed', suite],
  ] as const)('%s is valid and reflects the suite', (action, checkSuite) => {
    const event = checkSuitePayload({
      ...ctx,
      action,
      checkSuite,
      app,
      pullRequests: [samePull],
      headCommit,
      latestCheckRunsCount: 2,
    });
    expect(event.name).toBe('check_suite');
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      action,
      check_suite: {
        id: 1101,
        head_sha: sha('c'),
        head_branch: 'feature',
        status: checkSuite.status,
        conclusion: checkSuite.conclusion,
        latest_check_runs_count: 2,
        check_runs_url: `${urls.api}/repos/acme/widgets/check-suites/1101/check-runs`,
        head_commit: { id: sha('c'), tree_id: sha('e'), message: 'Add feature' },
        app: { id: 501 },
        pull_requests: [{ number: 43, head: { sha: sha('c'), repo: { id: widgets.id } } }],
      },
    });
  });
});

describe('check_suite without a run count', () => {
  it('reports none', () => {
    const event = checkSuitePayload({
      ...ctx,
      action: 'requested',
      checkSuite: { ...suite, status: 'queued', conclusion: null, headBranch: null },
      app,
      pullRequests: [],
      headCommit: {
        sha: sha('c'),
        tree: sha('e'),
        message: 'm',
        author: person,
        committer: person,
      },
    });
    expectRepoEvent(event);
    expect(event.payload).toMatchObject({
      check_suite: { latest_check_runs_count: 0, head_branch: null, pull_requests: [] },
    });
  });
});

describe('installation', () => {
  it.each(['created', 'deleted', 'suspend', 'unsuspend', 'new_permissions_accepted'] as const)(
    '%s is valid',
    (action) => {
      const inst = action === 'suspend' ? { ...installation, suspendedAt: t1 } : installation;
      const event = installationPayload({
        action,
        installation: inst,
        app,
        repositories: [widgets],
        sender: alice,
        urls,
      });
      expect(event.name).toBe('installation');
      expectValid(event);
      expect(event.payload).toMatchObject({
        action,
        installation: {
          id: 601,
          app_id: 501,
          account: { login: 'acme' },
          target_type: 'Organization',
          permissions: app.permissions,
          events: app.events,
          access_tokens_url: `${urls.api}/app/installations/601/access_tokens`,
          suspended_by: action === 'suspend' ? { login: 'alice' } : null,
        },
        repositories: [
          {
            id: widgets.id,
            node_id: 'R_7001',
            name: 'widgets',
            full_name: 'acme/widgets',
            private: false,
          },
        ],
        sender: { login: 'alice' },
      });
    },
  );

  it('describes an installation on a user account', () => {
    const event = installationPayload({
      action: 'created',
      installation: { ...installation, account: alice, repositorySelection: 'all' },
      app,
      repositories: [gadgets],
      sender: alice,
      urls,
    });
    expectValid(event);
    expect(event.payload).toMatchObject({
      installation: {
        account: { login: 'alice', type: 'User' },
        target_type: 'User',
        target_id: alice.id,
        repository_selection: 'all',
        html_url: `${urls.web}/settings/installations/601`,
      },
    });
  });

  it.each(['added', 'removed'] as const)('installation_repositories %s is valid', (action) => {
    const event = installationRepositoriesPayload({
      action,
      installation,
      app,
      added: action === 'added' ? [gadgets] : [],
      removed: action === 'removed' ? [widgets] : [],
      sender: towerBot,
      urls,
    });
    expect(event.name).toBe('installation_repositories');
    expectValid(event);
    expect(event.payload).toMatchObject({
      installation: { id: 601 },
      repository_selection: 'selected',
      [`repositories_${action}`]: [
        { full_name: action === 'added' ? 'alice/gadgets' : 'acme/widgets' },
      ],
      sender: { login: 'tower-ci[bot]', type: 'Bot', html_url: `${urls.web}/apps/tower-ci` },
    });
  });
});

describe('checkWebhook', () => {
  const valid = () =>
    pullRequestPayload({
      ...ctx,
      action: 'opened',
      pullRequest: pull(),
      headRepository: bobsFork,
      labels: [],
      mergeable: null,
      commits: 1,
      additions: 1,
      deletions: 0,
      changedFiles: 1,
    });

  it('catches a missing repository', () => {
    const event = valid();
    delete event.payload.repository;
    expect(checkWebhook(event)).toContainEqual("/ must have required property 'repository'");
  });

  it('catches a wrongly typed field', () => {
    const event = valid();
    event.payload.pull_request = { ...(event.payload.pull_request as object), number: '42' };
    expect(checkWebhook(event)).toContainEqual('/pull_request/number must be integer');
  });

  it('catches a field the schema does not know, and a state the action forbids', () => {
    const event = valid();
    event.payload.surprise = true;
    event.payload.pull_request = { ...(event.payload.pull_request as object), state: 'closed' };
    const problems = checkWebhook(event);
    expect(problems).toContainEqual('/ must NOT have additional properties (surprise)');
    expect(problems).toContainEqual(expect.stringContaining('/pull_request/state'));
  });

  it('catches a labeled event without its label', () => {
    const event = pullRequestPayload({
      ...ctx,
      action: 'labeled',
      pullRequest: pull(),
      headRepository: bobsFork,
      labels: [],
      mergeable: null,
      commits: 1,
      additions: 1,
      deletions: 0,
      changedFiles: 1,
    });
    expect(checkWebhook(event)).toContainEqual("/ must have required property 'label'");
  });

  it('validates push events, which have no action, and names unknown events', () => {
    expect(checkWebhook({ name: 'push', payload: {} })).toContainEqual(
      "/ must have required property 'ref'",
    );
    expect(checkWebhook({ name: 'pull_request', payload: { action: 'teleported' } })).toEqual([
      'no schema for pull_request$teleported',
    ]);
    expect(checkWebhook({ name: 'nonsense', payload: {} })).toEqual([
      'no schema for nonsense$event',
    ]);
  });
});
