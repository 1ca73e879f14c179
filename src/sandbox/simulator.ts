/**
 * The GitHub simulator: state, real git, the REST API (server.ts) and the
 * webhooks GitHub would send, plus a scripting API for tests and demos that
 * acts as people do on github.com (push, open a pull request, comment,
 * click Re-run).
 */
import {
  createHmac,
  generateKeyPairSync,
  createPublicKey,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { systemClock, type Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import { GitStore, type FileChanges, type GitPerson } from './git.js';
import { RateLimiter, githubLimits, type LimitSettings } from './limits.js';
import { TokenStore } from './auth.js';
import type {
  SimAccount,
  SimApp,
  SimCheckRun,
  SimComment,
  SimInstallation,
  SimPermission,
  SimPullRequest,
  SimRepository,
  SimReview,
  SimUrls,
} from './model.js';
import { OAuthStore } from './oauth.js';
import { loadOpenApi, type OpenApi } from './openapi.js';
import { createSandboxApp } from './server.js';
import { SimState } from './state.js';
import { ViolationLog } from './violations.js';
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
  type WebhookEvent,
} from './webhook-payloads.js';

const ZERO_SHA = '0'.repeat(40);

export type SimulatorOptions = {
  /** Where the bare repositories live. */
  dataDir: string;
  clock?: Clock;
  limits?: LimitSettings;
};

export type WebhookDelivery = {
  id: string;
  appId: number;
  event: string;
  action: string | undefined;
  payload: Record<string, unknown>;
  status: number | undefined;
  error: string | undefined;
};

export type SimRequest = {
  operationId: string;
  installationId: number | undefined;
  contentCreating: boolean;
  /** Refused by a rate limit (primary or content creation). */
  refused: boolean;
  at: Date;
};

export type PushInput = {
  branch: string;
  files: FileChanges;
  message?: string;
  /** Login of the person pushing, who is also the commit's author. */
  author: string;
  /** Commit on top of this instead of the branch tip (a force push when it is not a descendant). */
  parent?: string;
  force?: boolean;
};

/** The events Tower's app.yml subscribes to: what the simulator's Tower app receives. */
export const TOWER_APP_EVENTS = [
  'push',
  'pull_request',
  'pull_request_review',
  'issue_comment',
  'check_run',
  'check_suite',
] as const;
/** Sent to every app, subscribed or not. */
const ALWAYS_DELIVERED = ['installation', 'installation_repositories'];

export class GitHubSimulator {
  readonly state = new SimState();
  readonly violations = new ViolationLog();
  readonly tokens = new TokenStore();
  /** Sign-in with GitHub: browser sessions, codes and user tokens (oauth.ts). */
  readonly oauth = new OAuthStore();
  readonly deliveries: WebhookDelivery[] = [];
  /** Every API request that got past authentication, in order: what an app asked of GitHub. */
  readonly requests: SimRequest[] = [];
  readonly limiter: RateLimiter;
  readonly git: GitStore;
  readonly clock: Clock;
  readonly openapi: OpenApi;
  readonly app: Hono;
  urls: SimUrls = { web: 'http://127.0.0.1', api: 'http://127.0.0.1/api/v3' };
  readonly #inFlight = new Set<Promise<void>>();
  #server: ServerType | undefined;

  private constructor(options: SimulatorOptions) {
    this.clock = options.clock ?? systemClock;
    this.limiter = new RateLimiter(options.limits ?? githubLimits);
    this.git = new GitStore(options.dataDir);
    this.openapi = loadOpenApi();
    this.app = createSandboxApp(this);
  }

  static async create(options: SimulatorOptions): Promise<GitHubSimulator> {
    await mkdir(options.dataDir, { recursive: true });
    return new GitHubSimulator(options);
  }

  /** Serves the API under /api/v3, as GitHub Enterprise Server does. */
  async listen(port = 0, hostname = '127.0.0.1'): Promise<string> {
    const server = await new Promise<ServerType>((resolve, reject) => {
      const s = serve({ fetch: this.app.fetch, port, hostname }, () => resolve(s));
      s.once('error', reject);
    });
    this.#server = server;
    const address = server.address() as AddressInfo;
    const web = `http://${hostname}:${address.port}`;
    this.urls = { web, api: `${web}/api/v3` };
    return this.urls.api;
  }

  async close(): Promise<void> {
    await this.settled();
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    }
  }

  /** Effects that happen after GitHub has answered (webhooks of an API call): waited for by settled(). */
  track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      this.violations.record({
        kind: 'invalid-response',
        where: 'background effect',
        message: errorMessage(error),
      });
    });
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  /** Waits for every webhook delivery under way. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  cloneUrl(repository: SimRepository): string {
    return this.git.cloneUrl(repository.fullName);
  }

  person(account: SimAccount): GitPerson {
    return { name: account.name, email: account.email, date: this.clock.now() };
  }

  // ---- apps and installations ------------------------------------------------

  /** Registers a GitHub App; a key pair is made unless a private key is given. */
  createApp(input: {
    name?: string;
    owner?: string;
    webhookUrl?: string;
    webhookSecret?: string;
    /** Where people go back to after authorizing the app (its OAuth callback URL). */
    callbackUrl?: string;
    privateKey?: string;
    /** The events it subscribes to; Tower's app.yml's by default. */
    events?: readonly string[];
  }): { app: SimApp; privateKey: string } {
    const privateKey =
      input.privateKey ??
      generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs1', format: 'pem' })
        .toString();
    const id = this.state.nextId();
    const name = input.name ?? 'Tower';
    const now = this.clock.now();
    const app: SimApp = {
      id,
      nodeId: this.state.nodeId('Integration', id),
      slug: name.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
      name,
      owner: this.state.ensureAccount(input.owner ?? 'tower-org', 'Organization'),
      publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
      webhookUrl: input.webhookUrl,
      webhookSecret: input.webhookSecret ?? 'sandbox-webhook-secret',
      clientId: `Iv23li${randomBytes(7).toString('hex')}`,
      clientSecret: randomBytes(20).toString('hex'),
      callbackUrl: input.callbackUrl,
      permissions: {
        checks: 'write',
        contents: 'write',
        pull_requests: 'write',
        issues: 'write',
        metadata: 'read',
        members: 'read',
      },
      events: [...(input.events ?? TOWER_APP_EVENTS)],
      createdAt: now,
      updatedAt: now,
    };
    this.state.apps.set(id, app);
    return { app, privateKey };
  }

  /** Installs an app on an account, with access to the given repositories. */
  async install(
    app: SimApp,
    account: string,
    repositories: SimRepository[] = [],
    sender = account,
  ): Promise<SimInstallation> {
    const id = this.state.nextId();
    const now = this.clock.now();
    const owner = this.state.ensureAccount(
      account,
      this.state.account(account)?.type ?? 'Organization',
    );
    const installation: SimInstallation = {
      id,
      appId: app.id,
      account: owner,
      repositorySelection: 'selected',
      repositoryIds: repositories.map((r) => r.id),
      createdAt: now,
      updatedAt: now,
      suspendedAt: undefined,
    };
    this.state.installations.set(id, installation);
    await this.deliver(
      app,
      installationPayload({
        action: 'created',
        installation,
        app,
        repositories,
        sender: this.state.ensureAccount(sender),
        urls: this.urls,
      }),
    );
    return installation;
  }

  async uninstall(installation: SimInstallation, sender: string): Promise<void> {
    const app = this.state.apps.get(installation.appId)!;
    this.state.installations.delete(installation.id);
    this.tokens.revokeInstallation(installation.id);
    await this.deliver(
      app,
      installationPayload({
        action: 'deleted',
        installation,
        app,
        repositories: this.repositoriesOf(installation),
        sender: this.state.ensureAccount(sender),
        urls: this.urls,
      }),
    );
  }

  async addRepositories(
    installation: SimInstallation,
    repositories: SimRepository[],
    sender: string,
  ) {
    installation.repositoryIds.push(
      ...repositories.map((r) => r.id).filter((id) => !installation.repositoryIds.includes(id)),
    );
    await this.#installationRepositories(installation, 'added', repositories, sender);
  }

  async removeRepositories(
    installation: SimInstallation,
    repositories: SimRepository[],
    sender: string,
  ) {
    const ids = new Set(repositories.map((r) => r.id));
    installation.repositoryIds = installation.repositoryIds.filter((id) => !ids.has(id));
    await this.#installationRepositories(installation, 'removed', repositories, sender);
  }

  async #installationRepositories(
    installation: SimInstallation,
    action: 'added' | 'removed',
    repositories: SimRepository[],
    sender: string,
  ) {
    const app = this.state.apps.get(installation.appId)!;
    await this.deliver(
      app,
      installationRepositoriesPayload({
        action,
        installation,
        app,
        added: action === 'added' ? repositories : [],
        removed: action === 'removed' ? repositories : [],
        sender: this.state.ensureAccount(sender),
        urls: this.urls,
      }),
    );
  }

  repositoriesOf(installation: SimInstallation): SimRepository[] {
    return installation.repositoryIds.flatMap((id) => {
      const repo = this.state.repositories.get(id);
      return repo ? [repo] : [];
    });
  }

  // ---- repositories and pushes -----------------------------------------------

  /** A repository with an initial commit of `files` on the default branch. */
  async createRepository(input: {
    owner: string;
    name: string;
    files?: FileChanges;
    defaultBranch?: string;
    private?: boolean;
    ownerType?: SimAccount['type'];
  }): Promise<SimRepository> {
    const owner = this.state.ensureAccount(input.owner, input.ownerType ?? 'Organization');
    const id = this.state.nextId();
    const now = this.clock.now();
    const repository: SimRepository = {
      id,
      nodeId: this.state.nodeId('Repository', id),
      owner,
      name: input.name,
      fullName: `${owner.login}/${input.name}`,
      private: input.private ?? false,
      defaultBranch: input.defaultBranch ?? 'main',
      description: null,
      forkOf: undefined,
      createdAt: now,
      updatedAt: now,
      pushedAt: now,
    };
    await this.git.create(repository.fullName, repository.defaultBranch);
    this.state.repositories.set(id, repository);
    if (input.files) {
      const sha = await this.git.commit(repository.fullName, {
        parents: [],
        changes: input.files,
        message: 'Initial commit',
        author: this.person(owner),
      });
      await this.git.updateRef(repository.fullName, `refs/heads/${repository.defaultBranch}`, sha, {
        expectedOld: null,
      });
    }
    return repository;
  }

  /** A fork of `repository` owned by `owner`, with the same branches. */
  async fork(repository: SimRepository, owner: string): Promise<SimRepository> {
    const fork = await this.createRepository({
      owner,
      name: repository.name,
      defaultBranch: repository.defaultBranch,
      ownerType: 'User',
    });
    fork.forkOf = repository.id;
    for (const { ref, sha } of await this.git.refs(repository.fullName, 'refs/heads/')) {
      await this.git.fetch(fork.fullName, repository.fullName, sha, ref);
    }
    return fork;
  }

  async branchSha(repository: SimRepository, branch: string): Promise<string | undefined> {
    return this.git.resolve(repository.fullName, `refs/heads/${branch}`);
  }

  /** Commits `files` as `author` on a branch (created if absent) and pushes it. */
  async push(repository: SimRepository, input: PushInput): Promise<string> {
    const author = this.state.ensureAccount(input.author, 'User');
    const ref = `refs/heads/${input.branch}`;
    const before = await this.git.resolve(repository.fullName, ref);
    const parent =
      input.parent ?? before ?? (await this.branchSha(repository, repository.defaultBranch));
    const sha = await this.git.commit(repository.fullName, {
      parents: parent ? [parent] : [],
      changes: input.files,
      message: input.message ?? `Update ${Object.keys(input.files).join(', ')}`,
      author: this.person(author),
    });
    const result = await this.git.updateRef(repository.fullName, ref, sha, {
      expectedOld: before ?? null,
      force: input.force ?? false,
    });
    if (result !== 'ok') throw new Error(`push to ${input.branch} refused: ${result}`);
    await this.refUpdated(repository, ref, before ?? ZERO_SHA, sha, author, input.force ?? false);
    return sha;
  }

  /**
   * Everything GitHub does after a ref moves: the push webhook, pull
   * requests whose head moved (synchronize), and pull requests whose head
   * is now part of their base (merged).
   */
  async refUpdated(
    repository: SimRepository,
    ref: string,
    before: string,
    after: string,
    pusher: SimAccount,
    forced: boolean,
  ): Promise<void> {
    repository.pushedAt = this.clock.now();
    await this.#emitPush(repository, ref, before, after, pusher, forced);
    if (!ref.startsWith('refs/heads/') || after === ZERO_SHA) return;
    const branch = ref.slice('refs/heads/'.length);
    for (const pr of this.state.pullRequests) {
      if (pr.state !== 'open') continue;
      const base = this.state.repositories.get(pr.repositoryId)!;
      if (
        pr.head.repositoryId === repository.id &&
        pr.head.ref === branch &&
        pr.head.sha !== after
      ) {
        const previous = pr.head.sha;
        pr.head.sha = after;
        pr.updatedAt = this.clock.now();
        await this.syncPullHead(pr);
        await this.emitPullRequest(pr, 'synchronize', pusher, { before: previous, after });
      }
      if (pr.repositoryId === repository.id && pr.base.ref === branch) {
        pr.base.sha = after;
        if (await this.git.isAncestor(base.fullName, pr.head.sha, after)) {
          const now = this.clock.now();
          Object.assign(pr, {
            state: 'closed',
            merged: true,
            mergedAt: now,
            mergedBy: pusher,
            mergeCommitSha: after,
            closedAt: now,
            updatedAt: now,
          });
          await this.emitPullRequest(pr, 'closed', pusher);
        }
      }
    }
  }

  async #emitPush(
    repository: SimRepository,
    ref: string,
    before: string,
    after: string,
    pusher: SimAccount,
    forced: boolean,
  ) {
    const commits: Parameters<typeof pushPayload>[0]['commits'] = [];
    if (after !== ZERO_SHA) {
      const base =
        before !== ZERO_SHA ? before : await this.branchSha(repository, repository.defaultBranch);
      const shas =
        base && base !== after
          ? (await this.git.compare(repository.fullName, base, after)).commits
          : [after];
      // GitHub lists at most 20 commits in a push payload.
      for (const sha of shas.slice(-20)) {
        const info = (await this.git.commitInfo(repository.fullName, sha))!;
        const parent = info.parents[0];
        const files = parent
          ? (await this.git.compare(repository.fullName, parent, sha)).files
          : [];
        const initial = parent
          ? []
          : ((await this.git.tree(repository.fullName, sha, true))?.entries ?? []);
        commits.push({
          sha,
          message: info.message,
          tree: info.tree,
          author: info.author,
          committer: info.committer,
          added: [
            ...files
              .filter((f) => f.status === 'added' || f.status === 'renamed')
              .map((f) => f.filename),
            ...initial.filter((e) => e.type === 'blob').map((e) => e.path),
          ],
          removed: files.filter((f) => f.status === 'removed').map((f) => f.filename),
          modified: files.filter((f) => f.status === 'modified').map((f) => f.filename),
        });
      }
    }
    await this.#toInstallations(repository, (context) =>
      pushPayload({
        ...context,
        ref,
        before,
        after,
        created: before === ZERO_SHA,
        deleted: after === ZERO_SHA,
        forced,
        commits,
        pusher,
        sender: pusher,
      }),
    );
  }

  /** GitHub keeps every pull request's head at refs/pull/N/head in the base repository. */
  async syncPullHead(pr: SimPullRequest): Promise<void> {
    const base = this.state.repositories.get(pr.repositoryId)!;
    const head = this.state.repositories.get(pr.head.repositoryId)!;
    if (head.id !== base.id)
      await this.git.fetch(
        base.fullName,
        head.fullName,
        pr.head.sha,
        `refs/pull/${pr.number}/head`,
      );
    else
      await this.git.updateRef(base.fullName, `refs/pull/${pr.number}/head`, pr.head.sha, {
        force: true,
      });
  }

  // ---- pull requests -----------------------------------------------------------

  /** Opens a pull request; `head` is a branch, or `owner:branch` for a fork's. */
  async openPullRequest(
    repository: SimRepository,
    input: {
      head: string;
      base?: string;
      title: string;
      body?: string;
      author: string;
      draft?: boolean;
    },
  ): Promise<SimPullRequest> {
    const author = this.state.ensureAccount(input.author, 'User');
    const [headOwner, headBranch] = input.head.includes(':')
      ? (input.head.split(':', 2) as [string, string])
      : [repository.owner.login, input.head];
    const headRepository =
      headOwner.toLowerCase() === repository.owner.login.toLowerCase()
        ? repository
        : this.state.repository(headOwner, repository.name);
    if (!headRepository) throw new Error(`no repository ${headOwner}/${repository.name}`);
    const headSha = await this.branchSha(headRepository, headBranch);
    const baseRef = input.base ?? repository.defaultBranch;
    const baseSha = await this.branchSha(repository, baseRef);
    if (!headSha || !baseSha) throw new Error(`branch ${headBranch} or ${baseRef} does not exist`);
    const pr = this.createPullRequestRecord(repository, {
      title: input.title,
      body: input.body ?? null,
      user: author,
      draft: input.draft ?? false,
      head: { repositoryId: headRepository.id, ref: headBranch, sha: headSha },
      base: { ref: baseRef, sha: baseSha },
    });
    await this.syncPullHead(pr);
    await this.emitPullRequest(pr, 'opened', author);
    return pr;
  }

  createPullRequestRecord(
    repository: SimRepository,
    input: Pick<SimPullRequest, 'title' | 'body' | 'user' | 'draft' | 'head' | 'base'>,
  ): SimPullRequest {
    const id = this.state.nextId();
    const now = this.clock.now();
    const pr: SimPullRequest = {
      id,
      nodeId: this.state.nodeId('PullRequest', id),
      repositoryId: repository.id,
      number: this.state.nextIssueNumber(repository.id),
      ...input,
      state: 'open',
      locked: false,
      labelIds: [],
      merged: false,
      mergedAt: undefined,
      mergedBy: undefined,
      mergeCommitSha: undefined,
      closedAt: undefined,
      createdAt: now,
      updatedAt: now,
    };
    this.state.pullRequests.push(pr);
    return pr;
  }

  async closePullRequest(pr: SimPullRequest, by: string): Promise<void> {
    const now = this.clock.now();
    Object.assign(pr, { state: 'closed', closedAt: now, updatedAt: now });
    await this.emitPullRequest(pr, 'closed', this.state.ensureAccount(by));
  }

  /** "Convert to draft" on the pull request page. */
  async convertToDraft(pr: SimPullRequest, by: string): Promise<void> {
    Object.assign(pr, { draft: true, updatedAt: this.clock.now() });
    await this.emitPullRequest(pr, 'converted_to_draft', this.state.ensureAccount(by));
  }

  async reopenPullRequest(pr: SimPullRequest, by: string): Promise<void> {
    Object.assign(pr, { state: 'open', closedAt: undefined, updatedAt: this.clock.now() });
    await this.emitPullRequest(pr, 'reopened', this.state.ensureAccount(by));
  }

  async addLabel(pr: SimPullRequest, name: string, by: string): Promise<void> {
    const label = this.ensureLabel(pr.repositoryId, name);
    if (!pr.labelIds.includes(label.id)) pr.labelIds.push(label.id);
    await this.emitPullRequest(pr, 'labeled', this.state.ensureAccount(by), { label });
  }

  ensureLabel(repositoryId: number, name: string) {
    const existing = this.state.labels.find(
      (l) => l.repositoryId === repositoryId && l.name.toLowerCase() === name.toLowerCase(),
    );
    if (existing) return existing;
    const id = this.state.nextId();
    const label = {
      id,
      nodeId: this.state.nodeId('Label', id),
      repositoryId,
      name,
      color: 'ededed',
      description: null,
      default: false,
    };
    this.state.labels.push(label);
    return label;
  }

  /** Mergeability as GitHub computes it: does head merge cleanly into base's tip? */
  async mergeability(pr: SimPullRequest): Promise<{ mergeable: boolean | null; state: string }> {
    if (pr.state === 'closed') return { mergeable: null, state: 'unknown' };
    const repository = this.state.repositories.get(pr.repositoryId)!;
    const baseSha = await this.branchSha(repository, pr.base.ref);
    if (!baseSha) return { mergeable: null, state: 'unknown' };
    pr.base.sha = baseSha;
    const merged = await this.git.mergeTrees(repository.fullName, baseSha, pr.head.sha);
    if (!merged.clean) return { mergeable: false, state: 'dirty' };
    return { mergeable: true, state: pr.draft ? 'draft' : 'clean' };
  }

  async emitPullRequest(
    pr: SimPullRequest,
    action: 'opened' | 'synchronize' | 'reopened' | 'closed' | 'labeled' | 'converted_to_draft',
    sender: SimAccount,
    extra: {
      before?: string;
      after?: string;
      label?: ReturnType<GitHubSimulator['ensureLabel']>;
    } = {},
  ): Promise<void> {
    const repository = this.state.repositories.get(pr.repositoryId)!;
    const headRepository = this.state.repositories.get(pr.head.repositoryId)!;
    const { mergeable } = await this.mergeability(pr);
    const comparison = await this.git.compare(repository.fullName, pr.base.sha, pr.head.sha);
    await this.#toInstallations(
      repository,
      (context) =>
        pullRequestPayload({
          ...context,
          action,
          pullRequest: pr,
          headRepository,
          labels: this.state.labelsOf(pr),
          ...(extra.label ? { label: extra.label } : {}),
          ...(extra.before ? { before: extra.before, after: extra.after } : {}),
          mergeable,
          commits: comparison.commits.length,
          additions: comparison.files.reduce((n, f) => n + f.additions, 0),
          deletions: comparison.files.reduce((n, f) => n + f.deletions, 0),
          changedFiles: comparison.files.length,
        }),
      sender,
    );
  }

  // ---- people: permissions, comments, reviews ------------------------------------

  /**
   * A branch protection rule that apps may not bypass: GitHub refuses to
   * move the branch through the API (422), whoever asks, and the branch
   * reads as `protected` (GET /repos/{owner}/{repo}/branches/{branch}).
   */
  protectBranch(repository: SimRepository, branch: string, on = true): void {
    const key = `${repository.id}:${branch}`;
    if (on) this.state.protectedBranches.add(key);
    else this.state.protectedBranches.delete(key);
  }

  /**
   * A browser signed in to GitHub as `login`: the `user_session` cookie's
   * value, which the app authorization page (oauth.ts) honours.
   */
  browserSession(login: string): string {
    this.state.ensureAccount(login, 'User');
    return this.oauth.browserSession(login);
  }

  setPermission(repository: SimRepository, login: string, permission: SimPermission): void {
    this.state.ensureAccount(login, 'User');
    this.state.setPermission(repository, login, permission);
  }

  /** Adds a person to a team of an organisation (creating the team). */
  addTeamMember(org: string, slug: string, login: string): void {
    this.state.ensureAccount(login, 'User');
    const key = `${org}/${slug}`.toLowerCase();
    let members = this.state.teams.get(key);
    if (!members) this.state.teams.set(key, (members = new Set<string>()));
    members.add(login.toLowerCase());
  }

  /** Comments on a pull request as a person, optionally granting them a permission first. */
  async comment(
    repository: SimRepository,
    issueNumber: number,
    input: { body: string; author: string; permission?: SimPermission },
  ) {
    const author = this.state.ensureAccount(input.author, 'User');
    if (input.permission) this.state.setPermission(repository, author.login, input.permission);
    const comment = this.createCommentRecord(repository, issueNumber, input.body, author);
    await this.emitIssueComment(comment, comment.user);
    return comment;
  }

  createCommentRecord(
    repository: SimRepository,
    issueNumber: number,
    body: string,
    user: SimAccount,
  ): SimComment {
    const id = this.state.nextId();
    const now = this.clock.now();
    const comment: SimComment = {
      id,
      nodeId: this.state.nodeId('IssueComment', id),
      repositoryId: repository.id,
      issueNumber,
      body,
      user,
      createdAt: now,
      updatedAt: now,
    };
    this.state.comments.push(comment);
    return comment;
  }

  async emitIssueComment(comment: SimComment, sender: SimAccount): Promise<void> {
    const repository = this.state.repositories.get(comment.repositoryId)!;
    const pullRequest = this.state.pullRequest(repository.id, comment.issueNumber);
    if (!pullRequest) return;
    await this.#toInstallations(
      repository,
      (context) =>
        issueCommentPayload({
          ...context,
          action: 'created',
          pullRequest,
          labels: this.state.labelsOf(pullRequest),
          comment,
        }),
      sender,
    );
  }

  async review(
    pr: SimPullRequest,
    input: { author: string; state: SimReview['state']; body?: string },
  ): Promise<SimReview> {
    const id = this.state.nextId();
    const review: SimReview = {
      id,
      nodeId: this.state.nodeId('PullRequestReview', id),
      repositoryId: pr.repositoryId,
      pullNumber: pr.number,
      user: this.state.ensureAccount(input.author, 'User'),
      body: input.body ?? '',
      state: input.state,
      commitId: pr.head.sha,
      submittedAt: this.clock.now(),
    };
    this.state.reviews.push(review);
    if (review.state !== 'PENDING') await this.#emitReview(pr, review, 'submitted', review.user);
    return review;
  }

  /** A maintainer dismisses a review, as the pull request page's "Dismiss review" does. */
  async dismissReview(pr: SimPullRequest, review: SimReview, by: string): Promise<void> {
    review.state = 'DISMISSED';
    await this.#emitReview(pr, review, 'dismissed', this.state.ensureAccount(by, 'User'));
  }

  async #emitReview(
    pr: SimPullRequest,
    review: SimReview,
    action: 'submitted' | 'dismissed',
    sender: SimAccount,
  ): Promise<void> {
    const repository = this.state.repositories.get(pr.repositoryId)!;
    const headRepository = this.state.repositories.get(pr.head.repositoryId)!;
    await this.#toInstallations(
      repository,
      (context) =>
        pullRequestReviewPayload({
          ...context,
          action,
          pullRequest: pr,
          headRepository,
          labels: this.state.labelsOf(pr),
          review,
        }),
      sender,
    );
  }

  // ---- checks: buttons people click -----------------------------------------------

  /**
   * The "Re-run" button on one check run. GitHub shows it once the check
   * suite has completed (its webhook says so: the suite's status is
   * `completed`), so here it refuses before.
   */
  async rerequestCheckRun(checkRunId: number, by: string): Promise<void> {
    const run = this.#checkRun(checkRunId);
    const suite = this.state.checkSuites.find((s) => s.id === run.checkSuiteId);
    if (suite?.status !== 'completed') {
      throw new Error(
        `check run ${checkRunId} cannot be re-run: its check suite is ${suite?.status ?? 'gone'}, not completed`,
      );
    }
    await this.#emitCheckRun(run, 'rerequested', by);
  }

  /** An action button (`actions` of a check run). */
  async requestAction(checkRunId: number, identifier: string, by: string): Promise<void> {
    const run = this.#checkRun(checkRunId);
    if (!run.actions.some((a) => a.identifier === identifier)) {
      throw new Error(`check run ${checkRunId} has no action ${identifier}`);
    }
    await this.#emitCheckRun(run, 'requested_action', by, identifier);
  }

  /** "Re-run all checks" on a check suite. */
  async rerequestCheckSuite(checkSuiteId: number, by: string): Promise<void> {
    const suite = this.state.checkSuites.find((s) => s.id === checkSuiteId);
    if (!suite) throw new Error(`no check suite ${checkSuiteId}`);
    const repository = this.state.repositories.get(suite.repositoryId)!;
    const app = this.state.apps.get(suite.appId)!;
    const headCommit = (await this.git.commitInfo(repository.fullName, suite.headSha))!;
    await this.#toInstallations(
      repository,
      (context) =>
        checkSuitePayload({
          ...context,
          action: 'rerequested',
          checkSuite: suite,
          app,
          pullRequests: this.pullRequestsFor(repository, suite.headSha),
          headCommit: { ...headCommit },
        }),
      this.state.ensureAccount(by, 'User'),
      app.id,
    );
  }

  #checkRun(id: number): SimCheckRun {
    const run = this.state.checkRuns.find((r) => r.id === id);
    if (!run) throw new Error(`no check run ${id}`);
    return run;
  }

  async #emitCheckRun(
    run: SimCheckRun,
    action: 'rerequested' | 'requested_action',
    by: string,
    identifier?: string,
  ) {
    const repository = this.state.repositories.get(run.repositoryId)!;
    const suite = this.state.checkSuites.find((s) => s.id === run.checkSuiteId)!;
    const app = this.state.apps.get(run.appId)!;
    await this.#toInstallations(
      repository,
      (context) =>
        checkRunPayload({
          ...context,
          action,
          checkRun: run,
          checkSuite: suite,
          app,
          pullRequests: this.pullRequestsFor(repository, run.headSha),
          ...(identifier ? { requestedAction: { identifier } } : {}),
        }),
      this.state.ensureAccount(by, 'User'),
      app.id,
    );
  }

  /** Open pull requests of a repository whose head is `sha`. */
  pullRequestsFor(repository: SimRepository, sha: string): SimPullRequest[] {
    return this.state.pullRequests.filter(
      (pr) => pr.repositoryId === repository.id && pr.head.sha === sha && pr.state === 'open',
    );
  }

  // ---- reading back ------------------------------------------------------------------

  checkRuns(repository: SimRepository, sha?: string): SimCheckRun[] {
    return this.state.checkRuns.filter(
      (r) => r.repositoryId === repository.id && (sha === undefined || r.headSha === sha),
    );
  }

  comments(repository: SimRepository, issueNumber: number): SimComment[] {
    return this.state.comments.filter(
      (c) => c.repositoryId === repository.id && c.issueNumber === issueNumber,
    );
  }

  // ---- webhooks ------------------------------------------------------------------------

  /** Sends an event to every app installed on the repository (or one app). */
  async #toInstallations(
    repository: SimRepository,
    build: (context: {
      repository: SimRepository;
      installation: SimInstallation;
      sender: SimAccount;
      urls: SimUrls;
      cloneUrl: string;
    }) => WebhookEvent,
    sender?: SimAccount,
    onlyAppId?: number,
  ): Promise<void> {
    for (const installation of this.state.installations.values()) {
      if (!installation.repositoryIds.includes(repository.id)) continue;
      if (onlyAppId !== undefined && installation.appId !== onlyAppId) continue;
      const app = this.state.apps.get(installation.appId)!;
      await this.deliver(
        app,
        build({
          repository,
          installation,
          sender: sender ?? repository.owner,
          urls: this.urls,
          cloneUrl: this.cloneUrl(repository),
        }),
      );
    }
  }

  /**
   * Sends a delivery again, as the app settings' Redeliver button does:
   * the same payload with the same X-GitHub-Delivery. `asNew` gives it a
   * new delivery id instead, as when GitHub sends one event twice.
   */
  async redeliver(deliveryId: string, options: { asNew?: boolean } = {}): Promise<void> {
    const original = this.deliveries.find((d) => d.id === deliveryId);
    if (!original) throw new Error(`no delivery ${deliveryId}`);
    const app = this.state.apps.get(original.appId)!;
    await this.deliver(
      app,
      { name: original.event, payload: original.payload },
      options.asNew ? undefined : original.id,
    );
  }

  /**
   * Validates a webhook against @octokit/webhooks-schemas, then signs and
   * posts it to the app's webhook URL. An invalid payload is never sent:
   * it is recorded as a violation.
   */
  async deliver(app: SimApp, event: WebhookEvent, deliveryId?: string): Promise<void> {
    // GitHub sends an app only the events it subscribed to, and these to every app.
    if (!ALWAYS_DELIVERED.includes(event.name) && !app.events.includes(event.name)) return;
    const action = typeof event.payload.action === 'string' ? event.payload.action : undefined;
    const where = action ? `${event.name}.${action}` : event.name;
    const problems = checkWebhook(event);
    if (problems.length > 0) {
      this.violations.record({ kind: 'invalid-webhook', where, message: problems.join('; ') });
      return;
    }
    const delivery: WebhookDelivery = {
      id: deliveryId ?? randomUUID(),
      appId: app.id,
      event: event.name,
      action,
      payload: event.payload,
      status: undefined,
      error: undefined,
    };
    this.deliveries.push(delivery);
    if (!app.webhookUrl) return;
    const body = JSON.stringify(event.payload);
    const sending = (async () => {
      try {
        const response = await fetch(app.webhookUrl!, {
          method: 'POST',
          body,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'GitHub-Hookshot/sandbox',
            'x-github-event': event.name,
            'x-github-delivery': delivery.id,
            'x-github-hook-id': String(app.id),
            'x-github-hook-installation-target-type': 'integration',
            'x-github-hook-installation-target-id': String(app.id),
            'x-hub-signature-256': `sha256=${createHmac('sha256', app.webhookSecret).update(body).digest('hex')}`,
          },
        });
        delivery.status = response.status;
        await response.body?.cancel();
      } catch (error) {
        delivery.error = errorMessage(error);
        this.violations.record({ kind: 'webhook-delivery-failed', where, message: delivery.error });
      }
    })();
    this.#inFlight.add(sending);
    try {
      await sending;
    } finally {
      this.#inFlight.delete(sending);
    }
  }
}
