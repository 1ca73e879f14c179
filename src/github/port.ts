/**
 * GitHub behind a narrow port Tower owns: what Tower reads and
 * writes on GitHub, nothing more. src/github/octokit-port.ts implements it
 * with Octokit; tests run it against the simulator (src/sandbox/), the
 * other side of the same wire.
 */
import { TowerError } from '../lib/errors.js';

/** A repository as an installation reaches it. */
export type RepoRef = { installationId: number; owner: string; repo: string };

export type CheckRunFields = {
  name: string;
  head_sha?: string;
  external_id: string;
  details_url: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?:
    'success' | 'neutral' | 'failure' | 'timed_out' | 'cancelled' | 'skipped' | 'action_required';
  started_at?: string;
  completed_at?: string;
  output: {
    title: string;
    summary: string;
    text?: string;
    annotations?: {
      path: string;
      start_line: number;
      end_line: number;
      annotation_level: 'notice' | 'warning' | 'failure';
      message: string;
      title?: string;
    }[];
  };
  actions: { label: string; description: string; identifier: string }[];
};

/** GitHub's repository permission levels, most to least. */
export const permissionLevels = ['admin', 'maintain', 'write', 'triage', 'read', 'none'] as const;
export type Permission = (typeof permissionLevels)[number];

/** Whether `held` is at least `needed`. */
export function hasPermission(held: Permission, needed: Permission): boolean {
  return permissionLevels.indexOf(held) <= permissionLevels.indexOf(needed);
}

/** A `.tower/` file; over the definitions' limits, only listed: `size` set and `content` empty. */
export type TowerFile = { path: string; content: string; size?: number };

export type PullRequestInfo = {
  number: number;
  state: 'open' | 'closed';
  title: string;
  merged: boolean;
  draft: boolean;
  author: string;
  headSha: string;
  headRef: string;
  /** Null when the fork was deleted. */
  headRepoId: number | null;
  /** Who owns the head repository (a fork's owner can push to it); null when it was deleted. */
  headRepoOwner: string | null;
  baseRepoId: number;
  baseRef: string;
  baseSha: string;
};

export type GitHubPort = {
  /**
   * The files under `.tower/` at the commit: one tree request, then a blob
   * request for each YAML file there. Empty when there is no `.tower/`.
   */
  readTowerFiles(repo: RepoRef, sha: string): Promise<TowerFile[]>;
  /** The commit's message ([skip ci] and the like). */
  commitMessage(repo: RepoRef, sha: string): Promise<string>;
  /** Paths changed between two commits; null when GitHub cannot list them all. */
  compareFiles(repo: RepoRef, base: string, head: string): Promise<string[] | null>;
  /** Paths a pull request changes; null when GitHub cannot list them all. */
  pullRequestFiles(repo: RepoRef, number: number): Promise<string[] | null>;
  createCheckRun(repo: RepoRef, fields: CheckRunFields & { head_sha: string }): Promise<number>;
  updateCheckRun(repo: RepoRef, id: number, fields: CheckRunFields): Promise<void>;
  createComment(repo: RepoRef, issueNumber: number, body: string): Promise<number>;
  updateComment(repo: RepoRef, commentId: number, body: string): Promise<void>;
  /** A pull request as Tower needs it; undefined when there is none of that number. */
  pullRequest(repo: RepoRef, number: number): Promise<PullRequestInfo | undefined>;
  /** The commit a branch points at; undefined when there is no such branch. */
  branchSha(repo: RepoRef, branch: string): Promise<string | undefined>;
  /**
   * Whether GitHub protects the branch (a branch protection rule or ruleset
   * applies to it); false when there is no such branch.
   */
  branchProtected(repo: RepoRef, branch: string): Promise<boolean>;
  /** A new branch at the commit; an existing one of that name is moved there (force). */
  setBranch(repo: RepoRef, branch: string, sha: string): Promise<void>;
  /** Moves a branch, fast-forward only: `not-fast-forward` when the commit does not descend from its tip. */
  fastForward(repo: RepoRef, branch: string, sha: string): Promise<'ok' | 'not-fast-forward'>;
  deleteBranch(repo: RepoRef, branch: string): Promise<void>;
  /** Merges a commit into a branch (a merge commit on it, as GitHub's merge API makes). */
  mergeInto(
    repo: RepoRef,
    branch: string,
    head: string,
    message: string,
  ): Promise<{ kind: 'merged'; sha: string } | { kind: 'up-to-date' } | { kind: 'conflict' }>;
  /** A commit's tree and message. */
  commit(repo: RepoRef, sha: string): Promise<{ tree: string; message: string; parents: string[] }>;
  createCommit(
    repo: RepoRef,
    commit: {
      tree: string;
      parents: string[];
      message: string;
      author?: { name: string; email: string };
    },
  ): Promise<string>;
  /** The pull request's commits, oldest first (at most 250, as GitHub lists them). */
  pullRequestCommits(
    repo: RepoRef,
    number: number,
  ): Promise<{ sha: string; message: string; author: { name: string; email: string } }[]>;
  /** The pull request's reviews, oldest first; `commitId` is the head each was written for. */
  reviews(
    repo: RepoRef,
    number: number,
  ): Promise<{ user: string; state: string; commitId: string | null }[]>;
  closePullRequest(repo: RepoRef, number: number): Promise<void>;
  /** The user's permission on the repository (`none` for a stranger). */
  permission(repo: RepoRef, login: string): Promise<Permission>;
  /** Whether the user is an active member of the organisation's team. */
  isTeamMember(repo: RepoRef, org: string, teamSlug: string, login: string): Promise<boolean>;
};

/**
 * GitHub refused or failed a request. `retryAt` is when GitHub said to try
 * again (retry-after, or a spent rate limit's reset); `rateLimited` marks a
 * rate-limit refusal, with or without that time (a secondary limit may name
 * none: the budget backs off, src/db/github-budget.ts).
 */
export class GitHubError extends TowerError {
  override readonly name = 'GitHubError';
  readonly rateLimited: boolean;
  constructor(
    message: string,
    readonly status: number,
    readonly retryAt: Date | undefined,
    options?: { cause?: unknown; rateLimited?: boolean },
  ) {
    super(message, options);
    this.rateLimited = options?.rateLimited ?? retryAt !== undefined;
  }

  /** Whether trying again later may succeed: limits, server errors, the network. */
  get transient(): boolean {
    return this.rateLimited || this.status >= 500 || this.status === 0;
  }
}
