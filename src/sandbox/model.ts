/**
 * The GitHub simulator's state: plain records, one per GitHub object. The
 * git data itself lives in real bare repositories (git.ts); these records
 * hold what GitHub keeps beside git. Response and webhook shapes are built
 * from them (rest-shapes.ts, webhook-payloads.ts).
 */

export type SimAccount = {
  id: number;
  nodeId: string;
  login: string;
  type: 'User' | 'Organization' | 'Bot';
  /** Display name and e-mail, used for commits made as this account. */
  name: string;
  email: string;
};

export type SimApp = {
  id: number;
  nodeId: string;
  slug: string;
  name: string;
  owner: SimAccount;
  /** PEM public key; app JWTs are verified against it. */
  publicKeyPem: string;
  /** Where webhooks go, signed with the secret. */
  webhookUrl: string | undefined;
  webhookSecret: string;
  /** The app's OAuth client, for its user authorization (sign-in with GitHub, src/sandbox/oauth.ts). */
  clientId: string;
  clientSecret: string;
  /** Where GitHub sends people back after they authorize the app; unset, nobody can sign in. */
  callbackUrl: string | undefined;
  permissions: Record<string, 'read' | 'write'>;
  events: string[];
  createdAt: Date;
  updatedAt: Date;
};

export type SimInstallation = {
  id: number;
  appId: number;
  account: SimAccount;
  repositorySelection: 'all' | 'selected';
  /** The repositories the installation can reach. */
  repositoryIds: number[];
  createdAt: Date;
  updatedAt: Date;
  suspendedAt: Date | undefined;
};

export type SimRepository = {
  id: number;
  nodeId: string;
  owner: SimAccount;
  name: string;
  /** owner/name */
  fullName: string;
  private: boolean;
  defaultBranch: string;
  description: string | null;
  /** The repository this one is a fork of. */
  forkOf: number | undefined;
  createdAt: Date;
  updatedAt: Date;
  pushedAt: Date;
};

export type SimPermission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

export type SimLabel = {
  id: number;
  nodeId: string;
  repositoryId: number;
  name: string;
  color: string;
  description: string | null;
  default: boolean;
};

export type SimPullRequest = {
  id: number;
  nodeId: string;
  repositoryId: number;
  number: number;
  title: string;
  body: string | null;
  user: SimAccount;
  state: 'open' | 'closed';
  draft: boolean;
  locked: boolean;
  /** Head: a branch of this repository or of a fork. */
  head: { repositoryId: number; ref: string; sha: string };
  /** Base: a branch of this repository; `sha` is its tip when last computed. */
  base: { ref: string; sha: string };
  labelIds: number[];
  merged: boolean;
  mergedAt: Date | undefined;
  mergedBy: SimAccount | undefined;
  mergeCommitSha: string | undefined;
  closedAt: Date | undefined;
  createdAt: Date;
  updatedAt: Date;
};

export type SimComment = {
  id: number;
  nodeId: string;
  repositoryId: number;
  /** Pull requests are issues: this is the pull request's number. */
  issueNumber: number;
  body: string;
  user: SimAccount;
  createdAt: Date;
  updatedAt: Date;
};

export type SimReactionContent =
  '+1' | '-1' | 'laugh' | 'confused' | 'heart' | 'hooray' | 'rocket' | 'eyes';

export type SimReaction = {
  id: number;
  nodeId: string;
  commentId: number;
  user: SimAccount;
  content: SimReactionContent;
  createdAt: Date;
};

export type SimReview = {
  id: number;
  nodeId: string;
  repositoryId: number;
  pullNumber: number;
  user: SimAccount;
  body: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING';
  commitId: string;
  submittedAt: Date | undefined;
};

export type SimCheckStatus =
  'queued' | 'in_progress' | 'completed' | 'waiting' | 'requested' | 'pending';
export type SimCheckConclusion =
  | 'action_required'
  | 'cancelled'
  | 'failure'
  | 'neutral'
  | 'success'
  | 'skipped'
  | 'stale'
  | 'timed_out';

export type SimCheckSuite = {
  id: number;
  nodeId: string;
  repositoryId: number;
  appId: number;
  headSha: string;
  headBranch: string | null;
  status: SimCheckStatus;
  conclusion: SimCheckConclusion | null;
  createdAt: Date;
  updatedAt: Date;
};

export type SimAnnotation = {
  path: string;
  startLine: number;
  endLine: number;
  startColumn: number | undefined;
  endColumn: number | undefined;
  annotationLevel: 'notice' | 'warning' | 'failure';
  message: string;
  title: string | undefined;
  rawDetails: string | undefined;
};

export type SimCheckAction = { label: string; description: string; identifier: string };

export type SimCheckRun = {
  id: number;
  nodeId: string;
  repositoryId: number;
  checkSuiteId: number;
  appId: number;
  headSha: string;
  name: string;
  status: SimCheckStatus;
  conclusion: SimCheckConclusion | null;
  startedAt: Date | undefined;
  completedAt: Date | undefined;
  externalId: string | null;
  detailsUrl: string | null;
  output: {
    title: string | null;
    summary: string | null;
    text: string | null;
  };
  /** Every annotation sent, in order: GitHub appends across updates. */
  annotations: SimAnnotation[];
  actions: SimCheckAction[];
};

/** The URLs the simulator answers on, used inside response and webhook bodies. */
export type SimUrls = {
  /** REST API base, e.g. http://127.0.0.1:4010/api/v3 */
  api: string;
  /** Web base, e.g. http://127.0.0.1:4010 */
  web: string;
};
