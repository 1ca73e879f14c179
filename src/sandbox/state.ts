/**
 * The simulator's records, in memory. Git data lives in real repositories;
 * this holds what GitHub keeps beside git.
 */
import type {
  SimAccount,
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
} from './model.js';

export class SimState {
  #nextId = 1000;
  readonly accounts = new Map<string, SimAccount>();
  readonly apps = new Map<number, SimApp>();
  readonly installations = new Map<number, SimInstallation>();
  readonly repositories = new Map<number, SimRepository>();
  /** Per repository: login (lower case) → permission. Owners are admins. */
  readonly permissions = new Map<number, Map<string, SimPermission>>();
  /** Per repository: the last issue number handed out (pull requests are issues). */
  readonly issueNumbers = new Map<number, number>();
  readonly pullRequests: SimPullRequest[] = [];
  readonly labels: SimLabel[] = [];
  readonly comments: SimComment[] = [];
  readonly reactions: SimReaction[] = [];
  readonly reviews: SimReview[] = [];
  /** `repositoryId:branch` of branches a protection rule keeps apps from updating. */
  readonly protectedBranches = new Set<string>();
  readonly checkSuites: SimCheckSuite[] = [];
  readonly checkRuns: SimCheckRun[] = [];
  /** Teams: `<org>/<slug>` (lower case) → the logins (lower case) of their active members. */
  readonly teams = new Map<string, Set<string>>();

  nextId(): number {
    return this.#nextId++;
  }

  /** GitHub's legacy global node id: base64 of "<length>:<Type><id>". */
  nodeId(type: string, id: number): string {
    const body = `${type}${id}`;
    return Buffer.from(`0${body.length}:${body}`).toString('base64');
  }

  account(login: string): SimAccount | undefined {
    return this.accounts.get(login.toLowerCase());
  }

  ensureAccount(login: string, type: SimAccount['type'] = 'User'): SimAccount {
    const existing = this.account(login);
    if (existing) return existing;
    const id = this.nextId();
    const account: SimAccount = {
      id,
      nodeId: this.nodeId(type === 'Organization' ? 'Organization' : 'User', id),
      login,
      type,
      name: login,
      email: `${id}+${login}@users.noreply.github.com`,
    };
    this.accounts.set(login.toLowerCase(), account);
    return account;
  }

  repository(owner: string, name: string): SimRepository | undefined {
    const fullName = `${owner}/${name}`.toLowerCase();
    for (const repo of this.repositories.values())
      if (repo.fullName.toLowerCase() === fullName) return repo;
    return undefined;
  }

  nextIssueNumber(repositoryId: number): number {
    const next = (this.issueNumbers.get(repositoryId) ?? 0) + 1;
    this.issueNumbers.set(repositoryId, next);
    return next;
  }

  pullRequest(repositoryId: number, number: number): SimPullRequest | undefined {
    return this.pullRequests.find((pr) => pr.repositoryId === repositoryId && pr.number === number);
  }

  installationFor(repositoryId: number, appId?: number): SimInstallation | undefined {
    for (const installation of this.installations.values()) {
      if (appId !== undefined && installation.appId !== appId) continue;
      if (installation.repositoryIds.includes(repositoryId)) return installation;
    }
    return undefined;
  }

  permission(repository: SimRepository, login: string): SimPermission {
    if (repository.owner.login.toLowerCase() === login.toLowerCase()) return 'admin';
    const granted = this.permissions.get(repository.id)?.get(login.toLowerCase());
    if (granted) return granted;
    return repository.private ? 'none' : 'read';
  }

  setPermission(repository: SimRepository, login: string, permission: SimPermission): void {
    let map = this.permissions.get(repository.id);
    if (!map) this.permissions.set(repository.id, (map = new Map<string, SimPermission>()));
    map.set(login.toLowerCase(), permission);
  }

  isTeamMember(org: string, slug: string, login: string): boolean {
    return this.teams.get(`${org}/${slug}`.toLowerCase())?.has(login.toLowerCase()) ?? false;
  }

  labelsOf(pr: SimPullRequest): SimLabel[] {
    return pr.labelIds.flatMap((id) => this.labels.filter((label) => label.id === id));
  }

  botAccount(app: SimApp): SimAccount {
    return this.ensureAccount(`${app.slug}[bot]`, 'Bot');
  }
}
