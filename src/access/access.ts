/**
 * Who may see what (docs/api.md, Authentication): a public repository's
 * graphs, jobs, runs, logs, artifacts and queue are for everyone; a private
 * one's for people GitHub lets read it (asked with their sign-in, cached
 * briefly), API tokens naming it, operator tokens, and the minions running
 * one of the graph's jobs. The minion inventory, the pending jobs of all
 * repositories and /metrics are for operator tokens only. What a viewer may
 * not see does not exist for them: web/ answers 404, as for a missing one.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessQueries, RepositoryVisibility } from '../db/access.js';
import type { Clock } from '../lib/clock.js';
import type { ApiTokenScope, ApiTokens } from './api-tokens.js';
import { API_TOKEN_PREFIX } from './api-tokens.js';
import { CsrfError, ForbiddenError, SignInError, UnauthenticatedError } from './errors.js';
import type { GitHubUserClient } from './github-user.js';
import { createPermissionCache } from './permission-cache.js';
import {
  SESSION_TTL_MS,
  SIGN_IN_TTL_MS,
  randomToken,
  type Sealer,
  type Session,
} from './sessions.js';

export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'person'; session: Session }
  | { kind: 'token'; tokenId: number; scope: ApiTokenScope }
  | { kind: 'minion'; minionId: number }
  /** A job, with its run's read token: its own graph, while the run runs. */
  | { kind: 'run'; graphId: number };

/** What is being read: a repository, and the graph when it is one's (minions read by graph). */
export type ReadTarget = RepositoryVisibility & { graphId?: number };

/** How long GitHub's answer about a person and a repository is kept. */
export const PERMISSION_TTL_MS = 60_000;
const PERMISSION_CACHE_ENTRIES = 10_000;

/** A path on this server to go back to after signing in; anything else goes to "/". */
export function localPath(next: string | undefined): string {
  if (!next || next.length > 2000 || !next.startsWith('/') || /^\/[/\\]/.test(next)) return '/';
  // No control characters: a header value must not be split.
  return [...next].some((char) => char.charCodeAt(0) < 0x20) ? '/' : next;
}

/** Run read tokens are kept as SHA-256 hashes (src/minions/protocol.ts makes them). */
const RUN_READ_TOKEN_PREFIX = 'tmr_';
const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createAccess(deps: {
  queries: Pick<
    AccessQueries,
    | 'repositoryByName'
    | 'repositoryOfGraph'
    | 'repositoryOfJob'
    | 'repositoryOfRun'
    | 'minionRunsInGraph'
    | 'runningRunReadToken'
  >;
  tokens: Pick<ApiTokens, 'authenticate'>;
  /** The minion holding a `tmc_` credential; undefined for an unknown or retired one. */
  authenticateMinion: (credential: string) => Promise<number | undefined>;
  /** Absent when sign-in is not configured. */
  signIn: { github: GitHubUserClient; sealer: Sealer } | undefined;
  clock: Clock;
}) {
  const cache = createPermissionCache({
    ttlMs: PERMISSION_TTL_MS,
    maxEntries: PERMISSION_CACHE_ENTRIES,
    clock: deps.clock,
  });

  /** `tmr_<run id>_<secret>`: the graph of that run while it runs, when the secret is its own. */
  async function graphOfRunToken(token: string): Promise<number | undefined> {
    const parts = /^tmr_(\d{1,15})_([A-Za-z0-9_-]{1,100})$/.exec(token);
    if (!parts) return undefined;
    const run = await deps.queries.runningRunReadToken(Number(parts[1]));
    if (!run?.readTokenHash) return undefined;
    return sameSecret(tokenHash(parts[2]!), run.readTokenHash) ? run.graphId : undefined;
  }

  function signIn() {
    if (!deps.signIn)
      throw new SignInError('Signing in with GitHub is not configured on this Tower');
    return deps.signIn;
  }

  async function personMayRead(session: Session, repository: RepositoryVisibility) {
    const key = `${session.userId}:${repository.id}`;
    const known = cache.get(key);
    if (known !== undefined) return known;
    const allowed = await signIn().github.canRead(session.githubToken, repository.fullName);
    cache.set(key, allowed);
    return allowed;
  }

  return {
    signInEnabled: deps.signIn !== undefined,

    /**
     * Who is asking: a bearer credential (an API token or a minion's) wins
     * over a session cookie. A bearer credential Tower does not know is
     * refused (401); a session cookie it cannot open is no session.
     */
    async identify(request: {
      bearer: string | undefined;
      sessionCookie: string | undefined;
    }): Promise<Viewer> {
      const { bearer } = request;
      if (bearer !== undefined) {
        if (bearer.startsWith(API_TOKEN_PREFIX)) {
          const token = await deps.tokens.authenticate(bearer);
          if (!token) throw new UnauthenticatedError('Unknown or revoked API token');
          const { tokenId, ...scope } = token;
          return { kind: 'token', tokenId, scope };
        }
        if (bearer.startsWith(RUN_READ_TOKEN_PREFIX)) {
          const graphId = await graphOfRunToken(bearer);
          if (graphId === undefined) {
            throw new UnauthenticatedError('Unknown run token, or its run has ended');
          }
          return { kind: 'run', graphId };
        }
        const minionId = await deps.authenticateMinion(bearer);
        if (minionId === undefined) throw new UnauthenticatedError('Unknown credential');
        return { kind: 'minion', minionId };
      }
      const session = deps.signIn?.sealer.openSession(request.sessionCookie);
      return session ? { kind: 'person', session } : { kind: 'anonymous' };
    },

    async mayRead(viewer: Viewer, target: ReadTarget): Promise<boolean> {
      if (!target.private) return true;
      switch (viewer.kind) {
        case 'anonymous':
          return false;
        case 'token':
          return viewer.scope.operator || viewer.scope.repositoryIds.includes(target.id);
        case 'run':
          return target.graphId === viewer.graphId;
        case 'minion':
          return (
            target.graphId !== undefined &&
            deps.queries.minionRunsInGraph(viewer.minionId, target.graphId)
          );
        case 'person':
          return personMayRead(viewer.session, target);
      }
    },

    /** Operator routes: no credential is 401, a credential that is not an operator's 403. */
    requireOperator(viewer: Viewer): void {
      if (viewer.kind === 'token' && viewer.scope.operator) return;
      if (viewer.kind === 'anonymous') {
        throw new UnauthenticatedError(
          'This needs an operator API token (tower tokens create --operator)',
        );
      }
      throw new ForbiddenError('This is for operators: use an operator API token');
    },

    repositoryByName: (fullName: string) => deps.queries.repositoryByName(fullName),
    repositoryOfGraph: (id: number) => deps.queries.repositoryOfGraph(id),
    repositoryOfJob: (id: number) => deps.queries.repositoryOfJob(id),
    repositoryOfRun: (id: number) => deps.queries.repositoryOfRun(id),

    /** The way to GitHub: its URL, and the cookie that binds the `state` to this browser. */
    startSignIn(next: string | undefined): { url: string; stateCookie: string } {
      const { github, sealer } = signIn();
      const state = randomToken();
      return {
        url: github.authorizeUrl(state),
        stateCookie: sealer.sealSignIn({
          state,
          next: localPath(next),
          expiresAt: deps.clock.now().getTime() + SIGN_IN_TTL_MS,
        }),
      };
    },

    /** Back from GitHub: the code for a token, the token for the person, a session for both. */
    async finishSignIn(request: {
      code: string | undefined;
      state: string | undefined;
      stateCookie: string | undefined;
    }): Promise<{ sessionCookie: string; session: Session; next: string }> {
      const { github, sealer } = signIn();
      const started = sealer.openSignIn(request.stateCookie);
      if (!started || !request.state || !sameSecret(started.state, request.state)) {
        throw new SignInError(
          'This sign-in was not started here, or took longer than 10 minutes: sign in again',
        );
      }
      if (!request.code || request.code.length > 200) {
        throw new SignInError('GitHub sent no sign-in code back: sign in again');
      }
      const { token, expiresInMs } = await github.exchange(request.code);
      const user = await github.user(token);
      const ttl = Math.min(SESSION_TTL_MS, expiresInMs ?? SESSION_TTL_MS);
      const session: Session = {
        userId: user.id,
        login: user.login,
        githubToken: token,
        csrf: randomToken(),
        expiresAt: deps.clock.now().getTime() + ttl,
      };
      return { sessionCookie: sealer.sealSession(session), session, next: started.next };
    },

    /**
     * A state-changing page request: the session's CSRF token must come with
     * it (form field or header), and a browser's Origin must be this server's.
     */
    checkCsrf(
      session: Session | undefined,
      request: { token: string | undefined; origin: string | undefined; ownOrigin: string },
    ): void {
      if (request.origin !== undefined && request.origin !== request.ownOrigin) {
        throw new CsrfError(
          `Refused a request from another site (${request.origin.slice(0, 200)})`,
        );
      }
      if (!session || !request.token || !sameSecret(session.csrf, request.token)) {
        throw new CsrfError(
          "Refused a request without its page's CSRF token: reload the page and try again",
        );
      }
    },
  };
}

export type Access = ReturnType<typeof createAccess>;
