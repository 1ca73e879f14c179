/**
 * Webhook payloads as GitHub would send them, built from the simulator's
 * records. Each payload starts from a real example in
 * @octokit/webhooks-examples, so that fields the simulator does not model
 * keep realistic values; every field that reflects simulator state (ids,
 * names, URLs, shas, times, bodies, labels, states) is overridden. Payloads
 * are checked against @octokit/webhooks-schemas by checkWebhook.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
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
} from './model.js';

const require = createRequire(import.meta.url);
// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export type WebhookEvent = {
  /** The X-GitHub-Event header. */
  name: string;
  payload: Record<string, unknown>;
};

export type RepoContext = {
  repository: SimRepository;
  installation: SimInstallation;
  sender: SimAccount;
  urls: SimUrls;
  cloneUrl: string;
};

/** Git author or committer; the shape of git.ts's GitPerson, kept apart so as not to depend on it. */
export type CommitPerson = { name: string; email: string; date: Date };
export type HeadCommit = {
  sha: string;
  tree: string;
  message: string;
  author: CommitPerson;
  committer: CommitPerson;
};
export type PushedCommit = HeadCommit & { added: string[]; removed: string[]; modified: string[] };

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------
// Examples and schemas: large files, read lazily and once per process.

type ExampleGroup = { name: string; examples: Json[] };
type Library = {
  ajv: Ajv;
  definitions: Record<string, unknown>;
  examples: Map<string, Json[]>;
  validators: Map<string, ValidateFunction>;
  chosen: Map<string, Json>;
};

let library: Library | undefined;

function load(): Library {
  if (library) return library;
  const read = (id: string): unknown => JSON.parse(readFileSync(require.resolve(id), 'utf8'));
  const schema = read('@octokit/webhooks-schemas/schema.json') as {
    definitions: Record<string, unknown>;
  };
  const groups = read('@octokit/webhooks-examples/api.github.com/index.json') as ExampleGroup[];
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(schema, 'webhooks');
  library = {
    ajv,
    definitions: schema.definitions,
    examples: new Map(groups.map((g) => [g.name, g.examples])),
    validators: new Map(),
    chosen: new Map(),
  };
  return library;
}

/** The schema definition for one event and action, e.g. pull_request$opened or push$event. */
function definitionName(name: string, action: unknown): string {
  return typeof action === 'string' ? `${name}$${action}` : `${name}$event`;
}

function validator(definition: string): ValidateFunction | undefined {
  const lib = load();
  if (!(definition in lib.definitions)) return undefined;
  let validate = lib.validators.get(definition);
  if (!validate) {
    validate = lib.ajv.compile({ $ref: `webhooks#/definitions/${definition}` });
    lib.validators.set(definition, validate);
  }
  return validate;
}

function describe(error: ErrorObject): string {
  const extra =
    error.keyword === 'additionalProperties' ? ` (${String(error.params.additionalProperty)})` : '';
  return `${error.instancePath || '/'} ${error.message ?? error.keyword}${extra}`;
}

/** Problems with a payload against @octokit/webhooks-schemas for its event (and action); empty when valid. */
export function checkWebhook(event: WebhookEvent): string[] {
  const definition = definitionName(event.name, event.payload.action);
  const validate = validator(definition);
  if (!validate) return [`no schema for ${definition}`];
  return validate(event.payload) ? [] : (validate.errors ?? []).map(describe);
}

/**
 * A fresh copy of the first example of this event and action that is valid
 * against its own schema (some examples are stale). Actions without a valid
 * example (pull_request edited, check_run rerequested) borrow another
 * action's: builders set every top-level field themselves, and the nested
 * objects share their shapes across actions.
 */
function example(name: string, action?: string): Json {
  const lib = load();
  const key = definitionName(name, action);
  let found = lib.chosen.get(key);
  if (!found) {
    const valid = (lib.examples.get(name) ?? []).filter(
      (e) => validator(definitionName(name, e.action))?.(e) === true,
    );
    found = valid.find((e) => e.action === action) ?? valid[0];
    // Unreachable with the installed packages; a guard against a future release dropping examples.
    if (!found) throw new Error(`no valid example of the ${name} webhook`);
    lib.chosen.set(key, found);
  }
  return structuredClone(found);
}

/** The organization object of the first example that has one, for events whose example lacks it. */
function organizationExample(): Json {
  for (const examples of load().examples.values()) {
    const org = examples.find((e) => isJson(e.organization))?.organization;
    if (isJson(org)) return structuredClone(org);
  }
  throw new Error('no example organization');
}

// ---------------------------------------------------------------------------
// Small helpers.

const EXAMPLE_API = 'https://api.github.com';
const EXAMPLE_WEB = 'https://github.com';

function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** A nested template object; a second choice when the first is null in the example (e.g. merged_by). */
function obj(v: unknown, orElse?: unknown): Json {
  return isJson(v) ? v : isJson(orElse) ? orElse : {};
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Shallow override; an undefined value removes the key, as GitHub omits rather than nulls some fields. */
function override(base: Json, patch: Json): Json {
  const out: Json = { ...base, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete out[k];
  return out;
}

/**
 * Moves the example's URLs to the simulator's: the many derived URLs
 * (followers_url, forks_url, commits_url, …) all start with the object's own
 * API or web URL, so replacing those prefixes rewrites them all.
 */
function moved(template: Json, moves: [from: string, to: string][], patch: Json): Json {
  const rewritten = Object.fromEntries(
    Object.entries(template).map(([k, v]) => {
      if (typeof v !== 'string') return [k, v];
      const move = moves.find(
        // A prefix only up to a separator: /pulls/2 must not move /pulls/20.
        ([from]) =>
          from !== '' &&
          (v === from || (v.startsWith(from) && '/{.#?'.includes(v.charAt(from.length)))),
      );
      return [k, move ? move[1] + v.slice(move[0].length) : v];
    }),
  );
  return override(rewritten, patch);
}

/** GitHub's timestamps: ISO 8601 without milliseconds, or Unix seconds where the example has a number. */
function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
function time(template: unknown, d: Date): string | number {
  return typeof template === 'number' ? Math.floor(d.getTime() / 1000) : iso(d);
}

/** Legacy global node id ("023:IntegrationInstallation42"), for records that have none. */
function legacyNodeId(type: string, id: number): string {
  return Buffer.from(`0${type.length}:${type}${id}`).toString('base64');
}

function host(urls: SimUrls): string {
  return new URL(urls.web).hostname;
}

// ---------------------------------------------------------------------------
// Shared objects.

function user(t: Json, a: SimAccount, urls: SimUrls): Json {
  const url = `${urls.api}/users/${encodeURIComponent(a.login)}`;
  // Bots' profiles are their apps' pages.
  const html =
    a.type === 'Bot'
      ? `${urls.web}/apps/${a.login.replace(/\[bot\]$/, '')}`
      : `${urls.web}/${a.login}`;
  return moved(
    t,
    [
      [str(t.url), url],
      [str(t.html_url), html],
    ],
    {
      login: a.login,
      id: a.id,
      node_id: a.nodeId,
      avatar_url: `${urls.web}/avatars/u/${a.id}?v=4`,
      gravatar_id: '',
      url,
      html_url: html,
      type: a.type,
      site_admin: false,
      // Push payloads' repository owners carry name and e-mail.
      name: 'name' in t ? a.name : undefined,
      email: 'email' in t ? a.email : undefined,
    },
  );
}

function repository(t: Json, r: SimRepository, urls: SimUrls, cloneUrl: string): Json {
  const full = str(t.full_name);
  const url = `${urls.api}/repos/${r.fullName}`;
  const html = `${urls.web}/${r.fullName}`;
  return moved(
    t,
    [
      [`${EXAMPLE_API}/repos/${full}`, url],
      [`${EXAMPLE_WEB}/${full}`, html],
    ],
    {
      id: r.id,
      node_id: r.nodeId,
      name: r.name,
      full_name: r.fullName,
      private: r.private,
      owner: user(obj(t.owner), r.owner, urls),
      html_url: html,
      description: r.description,
      fork: r.forkOf !== undefined,
      // Push payloads give the web URL here; the others the API URL.
      url: str(t.url).startsWith(EXAMPLE_WEB) ? html : url,
      created_at: time(t.created_at, r.createdAt),
      updated_at: iso(r.updatedAt),
      pushed_at: time(t.pushed_at, r.pushedAt),
      git_url: `git://${host(urls)}/${r.fullName}.git`,
      ssh_url: `git@${host(urls)}:${r.fullName}.git`,
      clone_url: cloneUrl,
      svn_url: html,
      homepage: null,
      language: null,
      license: null,
      default_branch: r.defaultBranch,
      master_branch: 'master_branch' in t ? r.defaultBranch : undefined,
      organization:
        'organization' in t && r.owner.type === 'Organization' ? r.owner.login : undefined,
      visibility: r.private ? 'private' : 'public',
      topics: [],
      custom_properties: {},
    },
  );
}

/** The short repository shape of installation events. */
function repositoryRef(r: SimRepository): Json {
  return { id: r.id, node_id: r.nodeId, name: r.name, full_name: r.fullName, private: r.private };
}

function organization(t: Json | undefined, a: SimAccount, urls: SimUrls): Json {
  const template = t ?? organizationExample();
  return moved(template, [[str(template.url), `${urls.api}/orgs/${a.login}`]], {
    login: a.login,
    id: a.id,
    node_id: a.nodeId,
    avatar_url: `${urls.web}/avatars/u/${a.id}?v=4`,
    description: null,
  });
}

function label(l: SimLabel, r: SimRepository, urls: SimUrls): Json {
  return {
    id: l.id,
    node_id: l.nodeId,
    url: `${urls.api}/repos/${r.fullName}/labels/${encodeURIComponent(l.name)}`,
    name: l.name,
    color: l.color,
    default: l.default,
    description: l.description,
  };
}

function app(t: Json, a: SimApp, urls: SimUrls): Json {
  const html = `${urls.web}/apps/${a.slug}`;
  return override(t, {
    id: a.id,
    slug: a.slug,
    node_id: a.nodeId,
    owner: user(obj(t.owner), a.owner, urls),
    name: a.name,
    description: null,
    // The simulator has no app homepage: the app's page stands in.
    external_url: html,
    html_url: html,
    created_at: iso(a.createdAt),
    updated_at: iso(a.updatedAt),
    permissions: a.permissions,
    events: a.events,
  });
}

/** The full installation object of installation events. */
function installationObject(
  t: Json,
  i: SimInstallation,
  a: SimApp,
  sender: SimAccount,
  urls: SimUrls,
): Json {
  const org = i.account.type === 'Organization';
  return override(t, {
    id: i.id,
    account: user(obj(t.account), i.account, urls),
    repository_selection: i.repositorySelection,
    access_tokens_url: `${urls.api}/app/installations/${i.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: org
      ? `${urls.web}/organizations/${i.account.login}/settings/installations/${i.id}`
      : `${urls.web}/settings/installations/${i.id}`,
    app_id: a.id,
    app_slug: a.slug,
    target_id: i.account.id,
    target_type: org ? 'Organization' : 'User',
    permissions: a.permissions,
    events: a.events,
    created_at: time(t.created_at, i.createdAt),
    updated_at: time(t.updated_at, i.updatedAt),
    single_file_name: null,
    suspended_at: i.suspendedAt ? iso(i.suspendedAt) : null,
    // Who suspended is not recorded; the sender is the one who did for suspend events.
    suspended_by: i.suspendedAt ? user(obj(t.suspended_by, t.account), sender, urls) : null,
  });
}

/** GitHub Apps always get the installation the delivery is for. */
function installationLite(i: SimInstallation): Json {
  return { id: i.id, node_id: legacyNodeId('IntegrationInstallation', i.id) };
}

/** OWNER for the repository owner; anything finer needs collaborator data the caller has not given. */
function authorAssociation(a: SimAccount, r: SimRepository): string {
  return a.id === r.owner.id ? 'OWNER' : 'NONE';
}

/** sender, installation and, for organization repositories, organization: common to repository events. */
function repoEnvelope(base: Json, ctx: RepoContext): Json {
  const owner = ctx.repository.owner;
  return {
    repository: repository(obj(base.repository), ctx.repository, ctx.urls, ctx.cloneUrl),
    organization:
      owner.type === 'Organization'
        ? organization(isJson(base.organization) ? base.organization : undefined, owner, ctx.urls)
        : undefined,
    installation: installationLite(ctx.installation),
    sender: user(obj(base.sender), ctx.sender, ctx.urls),
  };
}

function event(name: string, payload: Json): WebhookEvent {
  return { name, payload: override({}, payload) };
}

function prUrls(r: SimRepository, n: number, urls: SimUrls) {
  const repo = `${urls.api}/repos/${r.fullName}`;
  return {
    url: `${repo}/pulls/${n}`,
    html: `${urls.web}/${r.fullName}/pull/${n}`,
    issue: `${repo}/issues/${n}`,
    repo,
  };
}

function pullRequestObject(
  t: Json,
  ctx: RepoContext & {
    pullRequest: SimPullRequest;
    headRepository: SimRepository;
    headCloneUrl?: string;
    labels: SimLabel[];
    mergeable: boolean | null;
    commits: number;
    additions: number;
    deletions: number;
    changedFiles: number;
  },
): Json {
  const { pullRequest: pr, repository: repo, headRepository: headRepo, urls } = ctx;
  const u = prUrls(repo, pr.number, urls);
  const oldFull = str(obj(obj(t.base).repo).full_name);
  const oldNumber = String(t.number);
  const head = obj(t.head);
  const base = obj(t.base);
  const statuses = `${u.repo}/statuses/${pr.head.sha}`;
  const side = (s: Json, r: SimRepository, ref: string, sha: string, cloneUrl: string): Json =>
    override(s, {
      label: `${r.owner.login}:${ref}`,
      ref,
      sha,
      user: user(obj(s.user), r.owner, urls),
      repo: repository(obj(s.repo), r, urls, cloneUrl),
    });
  const link = (href: string) => ({ href });
  return moved(
    t,
    [
      [`${EXAMPLE_API}/repos/${oldFull}/pulls/${oldNumber}`, u.url],
      [`${EXAMPLE_WEB}/${oldFull}/pull/${oldNumber}`, u.html],
      [`${EXAMPLE_API}/repos/${oldFull}/issues/${oldNumber}`, u.issue],
    ],
    {
      url: u.url,
      id: pr.id,
      node_id: pr.nodeId,
      html_url: u.html,
      diff_url: `${u.html}.diff`,
      patch_url: `${u.html}.patch`,
      issue_url: u.issue,
      number: pr.number,
      state: pr.state,
      locked: pr.locked,
      title: pr.title,
      user: user(obj(t.user), pr.user, urls),
      body: pr.body,
      created_at: iso(pr.createdAt),
      updated_at: iso(pr.updatedAt),
      closed_at: pr.closedAt ? iso(pr.closedAt) : null,
      merged_at: pr.mergedAt ? iso(pr.mergedAt) : null,
      merge_commit_sha: pr.mergeCommitSha ?? null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      labels: ctx.labels.map((l) => label(l, repo, urls)),
      milestone: null,
      draft: pr.draft,
      commits_url: `${u.url}/commits`,
      review_comments_url: `${u.url}/comments`,
      review_comment_url: `${u.repo}/pulls/comments{/number}`,
      comments_url: `${u.issue}/comments`,
      statuses_url: statuses,
      head: side(
        head,
        headRepo,
        pr.head.ref,
        pr.head.sha,
        headRepo.id === repo.id
          ? ctx.cloneUrl
          : (ctx.headCloneUrl ?? `${urls.web}/${headRepo.fullName}.git`),
      ),
      base: side(base, repo, pr.base.ref, pr.base.sha, ctx.cloneUrl),
      _links: {
        self: link(u.url),
        html: link(u.html),
        issue: link(u.issue),
        comments: link(`${u.issue}/comments`),
        review_comments: link(`${u.url}/comments`),
        review_comment: link(`${u.repo}/pulls/comments{/number}`),
        commits: link(`${u.url}/commits`),
        statuses: link(statuses),
      },
      author_association: authorAssociation(pr.user, repo),
      auto_merge: null,
      active_lock_reason: null,
      merged: pr.merged,
      mergeable: ctx.mergeable,
      rebaseable: ctx.mergeable,
      mergeable_state: ctx.mergeable === null ? 'unknown' : ctx.mergeable ? 'clean' : 'dirty',
      merged_by: pr.mergedBy ? user(obj(t.merged_by, t.user), pr.mergedBy, urls) : null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: ctx.commits,
      additions: ctx.additions,
      deletions: ctx.deletions,
      changed_files: ctx.changedFiles,
    },
  );
}

/** Check runs and suites list only pull requests whose head is in the repository itself, as GitHub does. */
function checkPullRequests(prs: SimPullRequest[], r: SimRepository, urls: SimUrls): Json[] {
  const ref = { id: r.id, url: `${urls.api}/repos/${r.fullName}`, name: r.name };
  return prs
    .filter((pr) => pr.head.repositoryId === r.id)
    .map((pr) => ({
      url: prUrls(r, pr.number, urls).url,
      id: pr.id,
      number: pr.number,
      head: { ref: pr.head.ref, sha: pr.head.sha, repo: ref },
      base: { ref: pr.base.ref, sha: pr.base.sha, repo: ref },
    }));
}

function checkSuiteObject(
  t: Json,
  s: SimCheckSuite,
  a: SimApp,
  prs: SimPullRequest[],
  r: SimRepository,
  urls: SimUrls,
): Json {
  return override(t, {
    id: s.id,
    node_id: s.nodeId,
    head_branch: s.headBranch,
    head_sha: s.headSha,
    status: s.status,
    conclusion: s.conclusion,
    url: `${urls.api}/repos/${r.fullName}/check-suites/${s.id}`,
    // The push that made the suite is not recorded.
    before: null,
    after: s.headSha,
    pull_requests: checkPullRequests(prs, r, urls),
    // The simulator has no deployments.
    deployment: undefined,
    app: app(obj(t.app), a, urls),
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  });
}

// ---------------------------------------------------------------------------
// Builders.

export function pushPayload(
  ctx: RepoContext & {
    ref: string;
    before: string;
    after: string;
    created: boolean;
    deleted: boolean;
    forced: boolean;
    commits: PushedCommit[];
    pusher: SimAccount;
  },
): WebhookEvent {
  const base = example('push');
  const { repository: r, urls } = ctx;
  const web = `${urls.web}/${r.fullName}`;
  const short = (sha: string) => sha.slice(0, 12);
  const person = (p: CommitPerson) => ({ name: p.name, email: p.email });
  const commits = ctx.commits.map((c) => ({
    id: c.sha,
    tree_id: c.tree,
    distinct: true,
    message: c.message,
    timestamp: iso(c.author.date),
    url: `${web}/commit/${c.sha}`,
    author: person(c.author),
    committer: person(c.committer),
    added: c.added,
    removed: c.removed,
    modified: c.modified,
  }));
  return event('push', {
    ref: ctx.ref,
    before: ctx.before,
    after: ctx.after,
    created: ctx.created,
    deleted: ctx.deleted,
    forced: ctx.forced,
    base_ref: null,
    compare:
      ctx.created && !ctx.deleted
        ? `${web}/compare/${ctx.ref.replace(/^refs\/(heads|tags)\//, '')}`
        : `${web}/compare/${short(ctx.before)}...${short(ctx.after)}`,
    commits,
    // The pushed tip, when it is among the pushed commits (never for deletions).
    head_commit: commits.find((c) => c.id === ctx.after) ?? null,
    ...repoEnvelope(base, ctx),
    pusher: { name: ctx.pusher.login, email: ctx.pusher.email },
  });
}

export function pullRequestPayload(
  ctx: RepoContext & {
    action:
      | 'opened'
      | 'synchronize'
      | 'reopened'
      | 'closed'
      | 'labeled'
      | 'edited'
      | 'converted_to_draft';
    pullRequest: SimPullRequest;
    headRepository: SimRepository;
    /** Clone URL of a fork head; defaults to the simulator's web URL + .git. */
    headCloneUrl?: string;
    labels: SimLabel[];
    /** For labeled. */
    label?: SimLabel;
    /** For synchronize; after defaults to the head sha. */
    before?: string;
    after?: string;
    /** For edited: what changed, as GitHub reports it. */
    changes?: {
      title?: { from: string };
      body?: { from: string };
      base?: { ref: { from: string }; sha: { from: string } };
    };
    mergeable: boolean | null;
    commits: number;
    additions: number;
    deletions: number;
    changedFiles: number;
  },
): WebhookEvent {
  const base = example('pull_request', ctx.action);
  const synchronize = ctx.action === 'synchronize';
  return event('pull_request', {
    action: ctx.action,
    number: ctx.pullRequest.number,
    changes: ctx.action === 'edited' ? (ctx.changes ?? {}) : undefined,
    before: synchronize ? ctx.before : undefined,
    after: synchronize ? (ctx.after ?? ctx.pullRequest.head.sha) : undefined,
    pull_request: pullRequestObject(obj(base.pull_request), ctx),
    label:
      ctx.action === 'labeled' && ctx.label
        ? label(ctx.label, ctx.repository, ctx.urls)
        : undefined,
    ...repoEnvelope(base, ctx),
  });
}

export function pullRequestReviewPayload(
  ctx: RepoContext & {
    action: 'submitted' | 'dismissed';
    pullRequest: SimPullRequest;
    headRepository: SimRepository;
    labels: SimLabel[];
    review: SimReview;
  },
): WebhookEvent {
  const base = example('pull_request_review', ctx.action);
  const { pullRequest: pr, review: rv, repository: r, urls } = ctx;
  const u = prUrls(r, pr.number, urls);
  // A review's pull request is the short form: the example's fields, none of the counts.
  const template = obj(base.pull_request);
  const full = pullRequestObject(template, {
    ...ctx,
    mergeable: null,
    commits: 0,
    additions: 0,
    deletions: 0,
    changedFiles: 0,
  });
  const pullRequest = Object.fromEntries(Object.entries(full).filter(([k]) => k in template));
  const review = obj(base.review);
  const html = `${u.html}#pullrequestreview-${rv.id}`;
  return event('pull_request_review', {
    action: ctx.action,
    review: override(review, {
      id: rv.id,
      node_id: rv.nodeId,
      user: user(obj(review.user), rv.user, urls),
      body: rv.body === '' ? null : rv.body,
      commit_id: rv.commitId,
      submitted_at: rv.submittedAt ? iso(rv.submittedAt) : undefined,
      state: rv.state.toLowerCase(),
      html_url: html,
      pull_request_url: u.url,
      author_association: authorAssociation(rv.user, r),
      _links: { html: { href: html }, pull_request: { href: u.url } },
    }),
    pull_request: pullRequest,
    ...repoEnvelope(base, ctx),
  });
}

export function issueCommentPayload(
  ctx: RepoContext & {
    action: 'created' | 'edited' | 'deleted';
    pullRequest: SimPullRequest;
    labels: SimLabel[];
    comment: SimComment;
    /** For edited: the body before the edit. */
    previousBody?: string;
  },
): WebhookEvent {
  const base = example('issue_comment', ctx.action);
  const { pullRequest: pr, comment: c, repository: r, urls } = ctx;
  const u = prUrls(r, pr.number, urls);
  const issue = obj(base.issue);
  const comment = obj(base.comment);
  const commentUrl = `${u.repo}/issues/comments/${c.id}`;
  const oldFull = str(obj(base.repository).full_name);
  return event('issue_comment', {
    action: ctx.action,
    changes:
      ctx.action === 'edited'
        ? ctx.previousBody === undefined
          ? {}
          : { body: { from: ctx.previousBody } }
        : undefined,
    // A pull request seen as an issue: the same number, id and node id, with pull_request links.
    issue: moved(
      issue,
      [
        [`${EXAMPLE_API}/repos/${oldFull}/issues/${String(issue.number)}`, u.issue],
        [`${EXAMPLE_API}/repos/${oldFull}`, u.repo],
      ],
      {
        url: u.issue,
        repository_url: u.repo,
        html_url: u.html,
        id: pr.id,
        node_id: pr.nodeId,
        number: pr.number,
        title: pr.title,
        user: user(obj(issue.user), pr.user, urls),
        labels: ctx.labels.map((l) => label(l, r, urls)),
        state: pr.state,
        locked: pr.locked,
        assignee: null,
        assignees: [],
        milestone: null,
        comments: 0,
        created_at: iso(pr.createdAt),
        updated_at: iso(pr.updatedAt),
        closed_at: pr.closedAt ? iso(pr.closedAt) : null,
        author_association: authorAssociation(pr.user, r),
        active_lock_reason: null,
        draft: pr.draft,
        pull_request: {
          url: u.url,
          html_url: u.html,
          diff_url: `${u.html}.diff`,
          patch_url: `${u.html}.patch`,
          merged_at: pr.mergedAt ? iso(pr.mergedAt) : null,
        },
        body: pr.body,
        reactions: override(obj(issue.reactions), { url: `${u.issue}/reactions` }),
        performed_via_github_app: null,
      },
    ),
    comment: override(comment, {
      url: commentUrl,
      html_url: `${u.html}#issuecomment-${c.id}`,
      issue_url: u.issue,
      id: c.id,
      node_id: c.nodeId,
      user: user(obj(comment.user), c.user, urls),
      created_at: iso(c.createdAt),
      updated_at: iso(c.updatedAt),
      author_association: authorAssociation(c.user, r),
      body: c.body,
      reactions: override(obj(comment.reactions), { url: `${commentUrl}/reactions` }),
      performed_via_github_app: null,
    }),
    ...repoEnvelope(base, ctx),
  });
}

export function checkRunPayload(
  ctx: RepoContext & {
    action: 'created' | 'completed' | 'rerequested' | 'requested_action';
    checkRun: SimCheckRun;
    checkSuite: SimCheckSuite;
    app: SimApp;
    pullRequests: SimPullRequest[];
    requestedAction?: { identifier: string };
  },
): WebhookEvent {
  const base = example('check_run', ctx.action);
  const { checkRun: run, repository: r, urls } = ctx;
  const t = obj(base.check_run);
  const url = `${urls.api}/repos/${r.fullName}/check-runs/${run.id}`;
  const appHtml = `${urls.web}/apps/${ctx.app.slug}`;
  return event('check_run', {
    action: ctx.action,
    check_run: override(t, {
      id: run.id,
      node_id: run.nodeId,
      head_sha: run.headSha,
      external_id: run.externalId ?? '',
      url,
      html_url: `${urls.web}/${r.fullName}/runs/${run.id}`,
      // GitHub falls back to the app's homepage.
      details_url: run.detailsUrl ?? appHtml,
      status: run.status,
      conclusion: run.conclusion,
      // GitHub sets started_at on creation even for queued runs.
      started_at: iso(run.startedAt ?? ctx.checkSuite.createdAt),
      completed_at: run.completedAt ? iso(run.completedAt) : null,
      output: override(obj(t.output), {
        title: run.output.title,
        summary: run.output.summary,
        text: run.output.text,
        annotations_count: run.annotations.length,
        annotations_url: `${url}/annotations`,
      }),
      name: run.name,
      check_suite: checkSuiteObject(
        obj(t.check_suite),
        ctx.checkSuite,
        ctx.app,
        ctx.pullRequests,
        r,
        urls,
      ),
      app: app(obj(t.app), ctx.app, urls),
      pull_requests: checkPullRequests(ctx.pullRequests, r, urls),
      deployment: undefined,
    }),
    requested_action: ctx.action === 'requested_action' ? ctx.requestedAction : undefined,
    ...repoEnvelope(base, ctx),
  });
}

export function checkSuitePayload(
  ctx: RepoContext & {
    action: 'completed' | 'requested' | 'rerequested';
    checkSuite: SimCheckSuite;
    app: SimApp;
    pullRequests: SimPullRequest[];
    headCommit: HeadCommit;
    /** How many check runs the suite has (latest per name). */
    latestCheckRunsCount?: number;
  },
): WebhookEvent {
  const base = example('check_suite', ctx.action);
  const { checkSuite: s, headCommit: c, urls } = ctx;
  const t = obj(base.check_suite);
  const suite = checkSuiteObject(t, s, ctx.app, ctx.pullRequests, ctx.repository, urls);
  return event('check_suite', {
    action: ctx.action,
    check_suite: override(suite, {
      latest_check_runs_count: ctx.latestCheckRunsCount ?? 0,
      check_runs_url: `${str(suite.url)}/check-runs`,
      head_commit: {
        id: c.sha,
        tree_id: c.tree,
        message: c.message,
        timestamp: iso(c.committer.date),
        author: { name: c.author.name, email: c.author.email },
        committer: { name: c.committer.name, email: c.committer.email },
      },
    }),
    ...repoEnvelope(base, ctx),
  });
}

export function installationPayload(input: {
  action: 'created' | 'deleted' | 'suspend' | 'unsuspend' | 'new_permissions_accepted';
  installation: SimInstallation;
  app: SimApp;
  repositories: SimRepository[];
  sender: SimAccount;
  urls: SimUrls;
}): WebhookEvent {
  const base = example('installation', input.action);
  return event('installation', {
    action: input.action,
    installation: installationObject(
      obj(base.installation),
      input.installation,
      input.app,
      input.sender,
      input.urls,
    ),
    repositories: input.repositories.map(repositoryRef),
    sender: user(obj(base.sender), input.sender, input.urls),
  });
}

export function installationRepositoriesPayload(input: {
  action: 'added' | 'removed';
  installation: SimInstallation;
  app: SimApp;
  added: SimRepository[];
  removed: SimRepository[];
  sender: SimAccount;
  urls: SimUrls;
}): WebhookEvent {
  const base = example('installation_repositories', input.action);
  const i = input.installation;
  return event('installation_repositories', {
    action: input.action,
    installation: installationObject(
      obj(base.installation),
      i,
      input.app,
      input.sender,
      input.urls,
    ),
    repository_selection: i.repositorySelection,
    repositories_added: input.added.map(repositoryRef),
    repositories_removed: input.removed.map(repositoryRef),
    // Set only when a member asked an owner to add the repositories.
    requester: null,
    sender: user(obj(base.sender), input.sender, input.urls),
  });
}
