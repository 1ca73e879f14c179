/**
 * REST response bodies built from the simulator's records, shaped as GitHub
 * shapes them: each function's result validates against the component
 * schema it is named for in GitHub's OpenAPI description.
 */
import type { CommitInfo, Comparison, FileChange, GitPerson, TreeEntry } from './git.js';
import type {
  SimAccount,
  SimAnnotation,
  SimApp,
  SimCheckRun,
  SimCheckSuite,
  SimComment,
  SimInstallation,
  SimLabel,
  SimPermission,
  SimPullRequest,
  SimReaction,
  SimRepository,
  SimReview,
  SimUrls,
} from './model.js';

export type AuthorAssociation =
  | 'COLLABORATOR'
  | 'CONTRIBUTOR'
  | 'FIRST_TIMER'
  | 'FIRST_TIME_CONTRIBUTOR'
  | 'MANNEQUIN'
  | 'MEMBER'
  | 'NONE'
  | 'OWNER';

/** The simulator's real git URL for a repository (its clone_url). */
export type CloneUrls = (repository: SimRepository) => string;

/** The account GitHub links a commit's author or committer to, by e-mail. */
export type AccountLookup = (person: GitPerson) => SimAccount | undefined;

/** GitHub's timestamp format: UTC, whole seconds. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const optionalTime = (date: Date | undefined) => (date ? timestamp(date) : null);

/** Opaque and stable, like GitHub's, for objects the model gives no node id. */
const nodeId = (prefix: string, ...parts: (string | number)[]) =>
  `${prefix}_${Buffer.from(parts.join(':')).toString('base64url')}`;

/** Paths and refs keep their slashes in URLs; everything else is escaped. */
const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

const repoApi = (repo: SimRepository, urls: SimUrls) => `${urls.api}/repos/${repo.fullName}`;
const repoWeb = (repo: SimRepository, urls: SimUrls) => `${urls.web}/${repo.fullName}`;

/** GitHub wraps base64 content at 60 characters, each line ending in a newline. */
const base64Lines = (content: Buffer) => content.toString('base64').replace(/.{1,60}/g, '$&\n');

const unsigned = {
  verified: false,
  reason: 'unsigned',
  signature: null,
  payload: null,
  verified_at: null,
};

const association = (user: SimAccount, repo: SimRepository, given?: AuthorAssociation) =>
  given ?? (user.id === repo.owner.id ? 'OWNER' : 'NONE');

export function simpleUser(account: SimAccount, urls: SimUrls) {
  const url = `${urls.api}/users/${encodeURIComponent(account.login)}`;
  return {
    login: account.login,
    id: account.id,
    node_id: account.nodeId,
    avatar_url: `${urls.web}/avatars/u/${account.id}?v=4`,
    gravatar_id: '',
    url,
    // A bot's page is its app's page (login "slug[bot]").
    html_url:
      account.type === 'Bot'
        ? `${urls.web}/apps/${encodeURIComponent(account.login.replace(/\[bot\]$/, ''))}`
        : `${urls.web}/${encodeURIComponent(account.login)}`,
    followers_url: `${url}/followers`,
    following_url: `${url}/following{/other_user}`,
    gists_url: `${url}/gists{/gist_id}`,
    starred_url: `${url}/starred{/owner}{/repo}`,
    subscriptions_url: `${url}/subscriptions`,
    organizations_url: `${url}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${url}/events{/privacy}`,
    received_events_url: `${url}/received_events`,
    type: account.type,
    user_view_type: 'public',
    site_admin: false,
  };
}

/** GET /user as a person's own token sees it: the public profile (the simulator keeps no more). */
export function publicUser(account: SimAccount, urls: SimUrls) {
  return {
    ...simpleUser(account, urls),
    name: account.name,
    company: null,
    blog: '',
    location: null,
    email: null,
    hireable: null,
    bio: null,
    public_repos: 0,
    public_gists: 0,
    followers: 0,
    following: 0,
    // The simulator does not record when accounts were made.
    created_at: '2008-01-01T00:00:00Z',
    updated_at: '2008-01-01T00:00:00Z',
  };
}

export function integration(app: SimApp, urls: SimUrls) {
  const htmlUrl = `${urls.web}/apps/${app.slug}`;
  return {
    id: app.id,
    slug: app.slug,
    node_id: app.nodeId,
    owner: simpleUser(app.owner, urls),
    name: app.name,
    description: null,
    // The model keeps no homepage: the app's own page stands in for it.
    external_url: htmlUrl,
    html_url: htmlUrl,
    created_at: timestamp(app.createdAt),
    updated_at: timestamp(app.updatedAt),
    permissions: app.permissions,
    events: app.events,
  };
}

export function installation(inst: SimInstallation, app: SimApp, urls: SimUrls) {
  const { account } = inst;
  return {
    id: inst.id,
    account: simpleUser(account, urls),
    repository_selection: inst.repositorySelection,
    access_tokens_url: `${urls.api}/app/installations/${inst.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url:
      account.type === 'Organization'
        ? `${urls.web}/organizations/${account.login}/settings/installations/${inst.id}`
        : `${urls.web}/settings/installations/${inst.id}`,
    app_id: app.id,
    app_slug: app.slug,
    target_id: account.id,
    target_type: account.type,
    permissions: app.permissions,
    events: app.events,
    created_at: timestamp(inst.createdAt),
    updated_at: timestamp(inst.updatedAt),
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    // The model does not record who suspended an installation.
    suspended_by: null,
    suspended_at: optionalTime(inst.suspendedAt),
  };
}

export function installationToken(
  token: {
    token: string;
    expiresAt: Date;
    installation: SimInstallation;
    permissions: Record<string, 'read' | 'write'>;
    /** Present when the token was limited to some repositories, as GitHub then lists them. */
    repositories?: SimRepository[];
  },
  urls: SimUrls,
  cloneUrls: CloneUrls,
) {
  return {
    token: token.token,
    expires_at: timestamp(token.expiresAt),
    permissions: token.permissions,
    repository_selection: token.installation.repositorySelection,
    ...(token.repositories
      ? { repositories: token.repositories.map((r) => repository(r, urls, cloneUrls(r))) }
      : {}),
  };
}

/** The fields every repository shape shares, and all of 'minimal-repository' GitHub sends. */
function minimalRepository(repo: SimRepository, urls: SimUrls) {
  const api = repoApi(repo, urls);
  return {
    id: repo.id,
    node_id: repo.nodeId,
    name: repo.name,
    full_name: repo.fullName,
    private: repo.private,
    owner: simpleUser(repo.owner, urls),
    html_url: repoWeb(repo, urls),
    description: repo.description,
    fork: repo.forkOf !== undefined,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    hooks_url: `${api}/hooks`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
  };
}

export function repository(repo: SimRepository, urls: SimUrls, cloneUrl: string) {
  const host = new URL(urls.web);
  return {
    ...minimalRepository(repo, urls),
    clone_url: cloneUrl,
    git_url: `git://${host.host}/${repo.fullName}.git`,
    ssh_url: `git@${host.hostname}:${repo.fullName}.git`,
    svn_url: repoWeb(repo, urls),
    mirror_url: null,
    homepage: null,
    language: null,
    license: null,
    // The simulator has no stars, watchers, forks counts or issues apart from pull requests.
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers: 0,
    watchers_count: 0,
    size: 0,
    open_issues: 0,
    open_issues_count: 0,
    default_branch: repo.defaultBranch,
    topics: [],
    is_template: false,
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: repo.private ? 'private' : 'public',
    allow_forking: true,
    web_commit_signoff_required: false,
    pushed_at: timestamp(repo.pushedAt),
    created_at: timestamp(repo.createdAt),
    updated_at: timestamp(repo.updatedAt),
  };
}

/**
 * The single-repository response. A fork names its parent; the simulator's
 * forks are one level deep, so the parent is also the network's source.
 */
export function fullRepository(
  repo: SimRepository,
  urls: SimUrls,
  cloneUrl: string,
  parent?: { repository: SimRepository; cloneUrl: string },
) {
  const upstream = parent && repository(parent.repository, urls, parent.cloneUrl);
  return {
    ...repository(repo, urls, cloneUrl),
    network_count: 0,
    subscribers_count: 0,
    allow_merge_commit: true,
    allow_squash_merge: true,
    allow_rebase_merge: true,
    allow_auto_merge: false,
    allow_update_branch: false,
    delete_branch_on_merge: false,
    ...(repo.owner.type === 'Organization' ? { organization: simpleUser(repo.owner, urls) } : {}),
    ...(upstream ? { parent: upstream, source: upstream } : {}),
  };
}

/** A branch as `GET /repos/{owner}/{repo}/branches/{branch}` answers (branch-with-protection). */
export function branch(
  repo: SimRepository,
  name: string,
  head: CommitInfo,
  isProtected: boolean,
  urls: SimUrls,
) {
  const self = `${repoApi(repo, urls)}/branches/${encodePath(name)}`;
  return {
    name,
    commit: commit(repo, head, undefined, urls),
    _links: { self, html: `${repoWeb(repo, urls)}/tree/${encodePath(name)}` },
    protected: isProtected,
    protection: {
      enabled: isProtected,
      required_status_checks: { enforcement_level: 'off', contexts: [], checks: [] },
    },
    protection_url: `${self}/protection`,
  };
}

/** `ref` is the full name, e.g. refs/heads/main. */
export function gitRef(repo: SimRepository, ref: string, sha: string, urls: SimUrls) {
  const api = repoApi(repo, urls);
  return {
    ref,
    node_id: nodeId('REF', repo.id, ref),
    url: `${api}/git/${encodePath(ref)}`,
    object: { type: 'commit', sha, url: `${api}/git/commits/${sha}` },
  };
}

export function gitTree(
  repo: SimRepository,
  sha: string,
  entries: TreeEntry[],
  truncated: boolean,
  urls: SimUrls,
) {
  const api = repoApi(repo, urls);
  return {
    sha,
    url: `${api}/git/trees/${sha}`,
    // Submodule entries name a commit in another repository: GitHub gives them no url.
    tree: entries.map((e) => ({
      path: e.path,
      mode: e.mode,
      type: e.type,
      sha: e.sha,
      ...(e.size === undefined ? {} : { size: e.size }),
      ...(e.type === 'commit' ? {} : { url: `${api}/git/${e.type}s/${e.sha}` }),
    })),
    truncated,
  };
}

export function blob(repo: SimRepository, sha: string, content: Buffer, urls: SimUrls) {
  return {
    sha,
    node_id: nodeId('B', repo.id, sha),
    size: content.length,
    url: `${repoApi(repo, urls)}/git/blobs/${sha}`,
    content: base64Lines(content),
    encoding: 'base64',
  };
}

/** The fields a file and a directory entry share in the contents API. */
function contentItem(
  repo: SimRepository,
  item: { path: string; type: TreeEntry['type']; sha: string; size: number },
  ref: string,
  urls: SimUrls,
) {
  const path = encodePath(item.path);
  const api = repoApi(repo, urls);
  const web = repoWeb(repo, urls);
  const self = `${api}/contents/${path}?ref=${encodeURIComponent(ref)}`;
  const refPath = `${encodePath(ref)}/${path}`;
  // A submodule's pages live in its own repository, which the model does not know.
  const git = item.type === 'commit' ? null : `${api}/git/${item.type}s/${item.sha}`;
  const html =
    item.type === 'commit' ? null : `${web}/${item.type === 'tree' ? 'tree' : 'blob'}/${refPath}`;
  return {
    name: basename(item.path),
    path: item.path,
    sha: item.sha,
    size: item.size,
    url: self,
    git_url: git,
    html_url: html,
    download_url: item.type === 'blob' ? `${web}/raw/${refPath}` : null,
    _links: { self, git, html },
  };
}

/** `ref` defaults to the default branch, as GitHub's does when none is asked for. */
export function contentFile(
  repo: SimRepository,
  file: { path: string; sha: string; size: number; content: Buffer; ref?: string },
  urls: SimUrls,
) {
  const item = { path: file.path, type: 'blob' as const, sha: file.sha, size: file.size };
  return {
    type: 'file' as const,
    encoding: 'base64',
    ...contentItem(repo, item, file.ref ?? repo.defaultBranch, urls),
    content: base64Lines(file.content),
  };
}

/** `entries` are the directory's direct children; their paths may be full or bare names. */
export function contentDirectory(
  repo: SimRepository,
  dirPath: string,
  entries: TreeEntry[],
  urls: SimUrls,
  ref: string = repo.defaultBranch,
) {
  const prefix = dirPath.replace(/^\/+|\/+$/g, '');
  return entries.map((e) => {
    const name = basename(e.path);
    const path = prefix ? `${prefix}/${name}` : name;
    return {
      // GitHub lists submodules and symlinks as files in a directory, for compatibility.
      type: e.type === 'tree' ? ('dir' as const) : ('file' as const),
      ...contentItem(repo, { path, type: e.type, sha: e.sha, size: e.size ?? 0 }, ref, urls),
    };
  });
}

const gitUser = (person: GitPerson) => ({
  name: person.name,
  email: person.email,
  date: timestamp(person.date),
});

export function gitCommit(repo: SimRepository, commit: CommitInfo, urls: SimUrls) {
  const api = repoApi(repo, urls);
  const web = repoWeb(repo, urls);
  return {
    sha: commit.sha,
    node_id: nodeId('C', repo.id, commit.sha),
    url: `${api}/git/commits/${commit.sha}`,
    html_url: `${web}/commit/${commit.sha}`,
    author: gitUser(commit.author),
    committer: gitUser(commit.committer),
    tree: { sha: commit.tree, url: `${api}/git/trees/${commit.tree}` },
    message: commit.message,
    parents: commit.parents.map((sha) => ({
      sha,
      url: `${api}/git/commits/${sha}`,
      html_url: `${web}/commit/${sha}`,
    })),
    verification: unsigned,
  };
}

/**
 * `files` are included (with stats) for a single commit, left out in lists.
 * The author and committer are GitHub users when their e-mail maps to one.
 */
export function commit(
  repo: SimRepository,
  info: CommitInfo,
  files: FileChange[] | undefined,
  urls: SimUrls,
  accountFor: AccountLookup = () => undefined,
) {
  const api = repoApi(repo, urls);
  const web = repoWeb(repo, urls);
  const userFor = (person: GitPerson) => {
    const account = accountFor(person);
    return account ? simpleUser(account, urls) : null;
  };
  return {
    url: `${api}/commits/${info.sha}`,
    sha: info.sha,
    node_id: nodeId('C', repo.id, info.sha),
    html_url: `${web}/commit/${info.sha}`,
    comments_url: `${api}/commits/${info.sha}/comments`,
    commit: {
      url: `${api}/git/commits/${info.sha}`,
      author: gitUser(info.author),
      committer: gitUser(info.committer),
      message: info.message,
      comment_count: 0,
      tree: { sha: info.tree, url: `${api}/git/trees/${info.tree}` },
      verification: unsigned,
    },
    author: userFor(info.author),
    committer: userFor(info.committer),
    parents: info.parents.map((sha) => ({
      sha,
      url: `${api}/commits/${sha}`,
      html_url: `${web}/commit/${sha}`,
    })),
    ...(files
      ? {
          stats: diffStats(files),
          files: files.map((f) => diffEntry(repo, f, info.sha, urls)),
        }
      : {}),
  };
}

function diffStats(files: FileChange[]) {
  const additions = files.reduce((total, f) => total + f.additions, 0);
  const deletions = files.reduce((total, f) => total + f.deletions, 0);
  return { additions, deletions, total: additions + deletions };
}

/** Links point into `headSha`, also for a removed file, as GitHub's do. */
export function diffEntry(repo: SimRepository, change: FileChange, headSha: string, urls: SimUrls) {
  const path = encodePath(change.filename);
  const web = repoWeb(repo, urls);
  return {
    sha: change.sha,
    filename: change.filename,
    status: change.status,
    additions: change.additions,
    deletions: change.deletions,
    changes: change.changes,
    blob_url: `${web}/blob/${headSha}/${path}`,
    raw_url: `${web}/raw/${headSha}/${path}`,
    contents_url: `${repoApi(repo, urls)}/contents/${path}?ref=${headSha}`,
    ...(change.patch === undefined ? {} : { patch: change.patch }),
    ...(change.previousFilename === undefined
      ? {}
      : { previous_filename: change.previousFilename }),
  };
}

export function commitComparison(
  repo: SimRepository,
  input: {
    base: CommitInfo;
    mergeBase: CommitInfo;
    /** The commits of comparison.commits (merge base to head), oldest first. */
    commits: CommitInfo[];
    comparison: Comparison;
    /** As requested, e.g. main...feature */
    basehead: string;
    accountFor?: AccountLookup;
  },
  urls: SimUrls,
) {
  const { aheadBy, behindBy } = input.comparison;
  // With no commits of its own the head is the merge base (identical or behind).
  const headSha = input.commits.at(-1)?.sha ?? input.mergeBase.sha;
  const web = `${repoWeb(repo, urls)}/compare/${input.basehead}`;
  const owner = repo.owner.login;
  return {
    url: `${repoApi(repo, urls)}/compare/${input.basehead}`,
    html_url: web,
    permalink_url: `${repoWeb(repo, urls)}/compare/${owner}:${input.base.sha}...${owner}:${headSha}`,
    diff_url: `${web}.diff`,
    patch_url: `${web}.patch`,
    base_commit: commit(repo, input.base, undefined, urls, input.accountFor),
    merge_base_commit: commit(repo, input.mergeBase, undefined, urls, input.accountFor),
    status: comparisonStatus(aheadBy, behindBy),
    ahead_by: aheadBy,
    behind_by: behindBy,
    total_commits: input.commits.length,
    commits: input.commits.map((c) => commit(repo, c, undefined, urls, input.accountFor)),
    files: input.comparison.files.map((f) => diffEntry(repo, f, headSha, urls)),
  };
}

function comparisonStatus(aheadBy: number, behindBy: number) {
  if (aheadBy > 0) return behindBy > 0 ? 'diverged' : 'ahead';
  return behindBy > 0 ? 'behind' : 'identical';
}

export function label(label: SimLabel, repo: SimRepository, urls: SimUrls) {
  return {
    id: label.id,
    node_id: label.nodeId,
    url: `${repoApi(repo, urls)}/labels/${encodeURIComponent(label.name)}`,
    name: label.name,
    description: label.description,
    color: label.color,
    default: label.default,
  };
}

type PullRequestContext = {
  /** The base repository, where the pull request lives. */
  repository: SimRepository;
  /** The head branch's repository: the same one, or a fork. */
  headRepository: SimRepository;
  labels: SimLabel[];
  /** Defaults to OWNER for the repository's owner, NONE for anyone else. */
  authorAssociation?: AuthorAssociation;
};

/** The fields of a pull request in lists ('pull-request-simple'). */
export function pullRequestSimple(
  pr: SimPullRequest,
  context: PullRequestContext,
  urls: SimUrls,
  cloneUrls: CloneUrls,
) {
  const { repository: repo, headRepository: headRepo } = context;
  const api = repoApi(repo, urls);
  const url = `${api}/pulls/${pr.number}`;
  const htmlUrl = `${repoWeb(repo, urls)}/pull/${pr.number}`;
  const issueUrl = `${api}/issues/${pr.number}`;
  const commentsUrl = `${issueUrl}/comments`;
  const reviewCommentsUrl = `${url}/comments`;
  const reviewCommentUrl = `${api}/pulls/comments{/number}`;
  const commitsUrl = `${url}/commits`;
  const statusesUrl = `${api}/statuses/${pr.head.sha}`;
  const side = (ref: string, sha: string, sideRepo: SimRepository) => ({
    label: `${sideRepo.owner.login}:${ref}`,
    ref,
    sha,
    user: simpleUser(sideRepo.owner, urls),
    repo: repository(sideRepo, urls, cloneUrls(sideRepo)),
  });
  return {
    url,
    id: pr.id,
    node_id: pr.nodeId,
    html_url: htmlUrl,
    diff_url: `${htmlUrl}.diff`,
    patch_url: `${htmlUrl}.patch`,
    issue_url: issueUrl,
    commits_url: commitsUrl,
    review_comments_url: reviewCommentsUrl,
    review_comment_url: reviewCommentUrl,
    comments_url: commentsUrl,
    statuses_url: statusesUrl,
    number: pr.number,
    state: pr.state,
    locked: pr.locked,
    title: pr.title,
    user: simpleUser(pr.user, urls),
    body: pr.body,
    // The schema wants a string here (GitHub itself sends null for no description).
    labels: context.labels.map((l) => ({
      ...label(l, repo, urls),
      description: l.description ?? '',
    })),
    milestone: null,
    active_lock_reason: null,
    created_at: timestamp(pr.createdAt),
    updated_at: timestamp(pr.updatedAt),
    closed_at: optionalTime(pr.closedAt),
    merged_at: optionalTime(pr.mergedAt),
    merge_commit_sha: pr.mergeCommitSha ?? null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    head: side(pr.head.ref, pr.head.sha, headRepo),
    base: side(pr.base.ref, pr.base.sha, repo),
    _links: {
      self: { href: url },
      html: { href: htmlUrl },
      issue: { href: issueUrl },
      comments: { href: commentsUrl },
      review_comments: { href: reviewCommentsUrl },
      review_comment: { href: reviewCommentUrl },
      commits: { href: commitsUrl },
      statuses: { href: statusesUrl },
    },
    author_association: association(pr.user, repo, context.authorAssociation),
    auto_merge: null,
    draft: pr.draft,
  };
}

/** A single pull request: the list fields plus what GitHub computes on demand. */
export function pullRequest(
  pr: SimPullRequest,
  details: PullRequestContext & {
    mergeable: boolean | null;
    /** e.g. clean, dirty, blocked, behind, unstable, draft, unknown */
    mergeableState: string;
    commits: number;
    additions: number;
    deletions: number;
    changedFiles: number;
    comments: number;
    reviewComments: number;
  },
  urls: SimUrls,
  cloneUrls: CloneUrls,
) {
  return {
    ...pullRequestSimple(pr, details, urls, cloneUrls),
    // Unlike in lists, a label's missing description is null here.
    labels: details.labels.map((l) => label(l, details.repository, urls)),
    merged: pr.merged,
    mergeable: details.mergeable,
    mergeable_state: details.mergeableState,
    merged_by: pr.mergedBy ? simpleUser(pr.mergedBy, urls) : null,
    comments: details.comments,
    review_comments: details.reviewComments,
    maintainer_can_modify: false,
    commits: details.commits,
    additions: details.additions,
    deletions: details.deletions,
    changed_files: details.changedFiles,
  };
}

export function pullRequestMergeResult(sha: string, merged: boolean, message: string) {
  return { sha, merged, message };
}

/** Reaction counts as GitHub rolls them up on a comment. */
function reactionRollup(url: string, reactions: SimReaction[]) {
  const count = (content: SimReaction['content']) =>
    reactions.filter((r) => r.content === content).length;
  return {
    url,
    total_count: reactions.length,
    '+1': count('+1'),
    '-1': count('-1'),
    laugh: count('laugh'),
    confused: count('confused'),
    heart: count('heart'),
    hooray: count('hooray'),
    eyes: count('eyes'),
    rocket: count('rocket'),
  };
}

/** Comments in the model are on pull requests, so html_url points at the pull request page. */
export function issueComment(
  comment: SimComment,
  repo: SimRepository,
  urls: SimUrls,
  extra: { reactions?: SimReaction[]; authorAssociation?: AuthorAssociation } = {},
) {
  const api = repoApi(repo, urls);
  const url = `${api}/issues/comments/${comment.id}`;
  return {
    id: comment.id,
    node_id: comment.nodeId,
    url,
    html_url: `${repoWeb(repo, urls)}/pull/${comment.issueNumber}#issuecomment-${comment.id}`,
    body: comment.body,
    user: simpleUser(comment.user, urls),
    created_at: timestamp(comment.createdAt),
    updated_at: timestamp(comment.updatedAt),
    issue_url: `${api}/issues/${comment.issueNumber}`,
    author_association: association(comment.user, repo, extra.authorAssociation),
    reactions: reactionRollup(`${url}/reactions`, extra.reactions ?? []),
  };
}

export function reaction(reaction: SimReaction, urls: SimUrls) {
  return {
    id: reaction.id,
    node_id: reaction.nodeId,
    user: simpleUser(reaction.user, urls),
    content: reaction.content,
    created_at: timestamp(reaction.createdAt),
  };
}

/** A pending review has not been submitted: GitHub then leaves submitted_at out. */
export function pullRequestReview(
  review: SimReview,
  repo: SimRepository,
  urls: SimUrls,
  extra: { authorAssociation?: AuthorAssociation } = {},
) {
  const htmlUrl = `${repoWeb(repo, urls)}/pull/${review.pullNumber}#pullrequestreview-${review.id}`;
  const pullUrl = `${repoApi(repo, urls)}/pulls/${review.pullNumber}`;
  return {
    id: review.id,
    node_id: review.nodeId,
    user: simpleUser(review.user, urls),
    body: review.body,
    state: review.state,
    html_url: htmlUrl,
    pull_request_url: pullUrl,
    _links: { html: { href: htmlUrl }, pull_request: { href: pullUrl } },
    ...(review.submittedAt ? { submitted_at: timestamp(review.submittedAt) } : {}),
    commit_id: review.commitId,
    author_association: association(review.user, repo, extra.authorAssociation),
  };
}

/**
 * GitHub's 'pull-request-minimal' list on check runs and suites: only pull
 * requests whose head and base are both in the check's repository; fork
 * pull requests are left out.
 */
function pullRequestsMinimal(pulls: SimPullRequest[], repo: SimRepository, urls: SimUrls) {
  const api = repoApi(repo, urls);
  const repoRef = { id: repo.id, url: api, name: repo.name };
  return pulls
    .filter((pr) => pr.repositoryId === repo.id && pr.head.repositoryId === repo.id)
    .map((pr) => ({
      id: pr.id,
      number: pr.number,
      url: `${api}/pulls/${pr.number}`,
      head: { ref: pr.head.ref, sha: pr.head.sha, repo: repoRef },
      base: { ref: pr.base.ref, sha: pr.base.sha, repo: repoRef },
    }));
}

export function checkRun(
  run: SimCheckRun,
  context: {
    suite: SimCheckSuite;
    app: SimApp;
    repository: SimRepository;
    pullRequests: SimPullRequest[];
  },
  urls: SimUrls,
) {
  const url = `${repoApi(context.repository, urls)}/check-runs/${run.id}`;
  return {
    id: run.id,
    node_id: run.nodeId,
    head_sha: run.headSha,
    external_id: run.externalId,
    url,
    html_url: `${repoWeb(context.repository, urls)}/runs/${run.id}`,
    details_url: run.detailsUrl,
    status: run.status,
    conclusion: run.conclusion,
    started_at: optionalTime(run.startedAt),
    completed_at: optionalTime(run.completedAt),
    output: {
      title: run.output.title,
      summary: run.output.summary,
      text: run.output.text,
      annotations_count: run.annotations.length,
      annotations_url: `${url}/annotations`,
    },
    name: run.name,
    check_suite: { id: context.suite.id },
    app: integration(context.app, urls),
    pull_requests: pullRequestsMinimal(context.pullRequests, context.repository, urls),
  };
}

/** The suite's head commit as GitHub summarises it ('simple-commit'). */
const simpleCommit = (commit: CommitInfo) => ({
  id: commit.sha,
  tree_id: commit.tree,
  message: commit.message,
  timestamp: timestamp(commit.committer.date),
  author: { name: commit.author.name, email: commit.author.email },
  committer: { name: commit.committer.name, email: commit.committer.email },
});

export function checkSuite(
  suite: SimCheckSuite,
  context: {
    app: SimApp;
    repository: SimRepository;
    headCommit: CommitInfo;
    latestCheckRunsCount: number;
    pullRequests: SimPullRequest[];
  },
  urls: SimUrls,
) {
  const url = `${repoApi(context.repository, urls)}/check-suites/${suite.id}`;
  return {
    id: suite.id,
    node_id: suite.nodeId,
    head_branch: suite.headBranch,
    head_sha: suite.headSha,
    status: suite.status,
    conclusion: suite.conclusion,
    url,
    // The push a suite came from is not recorded: only where it ended.
    before: null,
    after: suite.headSha,
    pull_requests: pullRequestsMinimal(context.pullRequests, context.repository, urls),
    app: integration(context.app, urls),
    repository: minimalRepository(context.repository, urls),
    created_at: timestamp(suite.createdAt),
    updated_at: timestamp(suite.updatedAt),
    head_commit: simpleCommit(context.headCommit),
    latest_check_runs_count: context.latestCheckRunsCount,
    check_runs_url: `${url}/check-runs`,
    rerequestable: true,
    runs_rerequestable: true,
  };
}

export function checkAnnotation(
  annotation: SimAnnotation,
  run: SimCheckRun,
  repo: SimRepository,
  urls: SimUrls,
) {
  return {
    path: annotation.path,
    blob_href: `${repoWeb(repo, urls)}/blob/${run.headSha}/${encodePath(annotation.path)}`,
    start_line: annotation.startLine,
    end_line: annotation.endLine,
    start_column: annotation.startColumn ?? null,
    end_column: annotation.endColumn ?? null,
    annotation_level: annotation.annotationLevel,
    title: annotation.title ?? null,
    message: annotation.message,
    raw_details: annotation.rawDetails ?? null,
  };
}

/** Roles from least to most; each includes the ones before it. */
const roles = [
  'none',
  'read',
  'triage',
  'write',
  'maintain',
  'admin',
] as const satisfies SimPermission[];

/** The legacy base role GitHub reports as `permission`: maintain reads as write, triage as read. */
const legacyPermission = {
  admin: 'admin',
  maintain: 'write',
  write: 'write',
  triage: 'read',
  read: 'read',
  none: 'none',
} as const satisfies Record<SimPermission, string>;

export function collaboratorPermission(
  account: SimAccount,
  permission: SimPermission,
  urls: SimUrls,
) {
  const rank = roles.indexOf(permission);
  const atLeast = (role: SimPermission) => rank >= roles.indexOf(role);
  return {
    permission: legacyPermission[permission],
    role_name: permission,
    user: {
      ...simpleUser(account, urls),
      permissions: {
        admin: atLeast('admin'),
        maintain: atLeast('maintain'),
        push: atLeast('write'),
        triage: atLeast('triage'),
        pull: atLeast('read'),
      },
      role_name: permission,
    },
  };
}
