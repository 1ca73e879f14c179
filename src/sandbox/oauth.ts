/**
 * GitHub's web sign-in for apps (the OAuth web flow of a GitHub App's user
 * authorization), as github.com runs it: `GET /login/oauth/authorize` sends
 * a person who is signed in to GitHub back to the app's callback with a code
 * (valid ten minutes, once); `POST /login/oauth/access_token` trades it, with
 * the app's client ID and secret, for a `ghu_` user token (eight hours). These
 * endpoints are not in the REST description: their parameters are checked
 * here, strictly, and anything unexpected is recorded as a violation.
 *
 * Who is signed in to the simulated github.com: a `user_session` cookie from
 * `sim.oauth.browserSession(login)` (tests), or the sign-in form at `/login`
 * (a person trying the demo: a login, no password).
 */
import { randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { SimApp } from './model.js';
import type { GitHubSimulator } from './simulator.js';

export const USER_TOKEN_PREFIX = 'ghu_';
const CODE_TTL_MS = 10 * 60 * 1000;
const USER_TOKEN_TTL_MS = 8 * 60 * 60 * 1000;
const SESSION_COOKIE = 'user_session';

export type UserToken = { token: string; login: string; appId: number; expiresAt: Date };

type Code = { appId: number; login: string; redirectUri: string | undefined; expiresAt: Date };

const random = (bytes: number) => randomBytes(bytes).toString('base64url');

/** Browser sessions, codes and user tokens handed out, by value. */
export class OAuthStore {
  readonly #sessions = new Map<string, string>();
  readonly #codes = new Map<string, Code>();
  readonly #tokens = new Map<string, UserToken>();

  /** A `user_session` cookie value: the browser it goes in is signed in to GitHub as `login`. */
  browserSession(login: string): string {
    const value = random(24);
    this.#sessions.set(value, login);
    return value;
  }

  sessionLogin(value: string | undefined): string | undefined {
    return value === undefined ? undefined : this.#sessions.get(value);
  }

  issueCode(code: Omit<Code, 'expiresAt'>, now: Date): string {
    const value = random(15).slice(0, 20);
    this.#codes.set(value, { ...code, expiresAt: new Date(now.getTime() + CODE_TTL_MS) });
    return value;
  }

  /** A code is good once. */
  takeCode(value: string, now: Date): Code | undefined {
    const code = this.#codes.get(value);
    this.#codes.delete(value);
    return code && code.expiresAt > now ? code : undefined;
  }

  issueToken(login: string, appId: number, now: Date): UserToken {
    const token: UserToken = {
      token: `${USER_TOKEN_PREFIX}${random(27).slice(0, 36)}`,
      login,
      appId,
      expiresAt: new Date(now.getTime() + USER_TOKEN_TTL_MS),
    };
    this.#tokens.set(token.token, token);
    return token;
  }

  userToken(value: string): UserToken | undefined {
    return this.#tokens.get(value);
  }

  /** What a person does under Settings → Applications: the app's tokens for them stop working. */
  revokeTokens(login: string): void {
    for (const [value, token] of this.#tokens)
      if (token.login.toLowerCase() === login.toLowerCase()) this.#tokens.delete(value);
  }
}

const AUTHORIZE_PARAMETERS = new Set([
  'client_id',
  'redirect_uri',
  'state',
  'login',
  'scope',
  'allow_signup',
  'prompt',
  'code_challenge',
  'code_challenge_method',
]);
const TOKEN_PARAMETERS = new Set([
  'client_id',
  'client_secret',
  'code',
  'redirect_uri',
  'repository_id',
  'code_verifier',
  'grant_type',
]);

/**
 * GitHub takes a redirect_uri whose host and port are the callback URL's
 * and whose path lies under the callback's path.
 */
function redirectAllowed(app: SimApp, redirectUri: string | undefined): boolean {
  if (!app.callbackUrl) return false;
  if (redirectUri === undefined) return true;
  let given: URL;
  let callback: URL;
  try {
    given = new URL(redirectUri);
    callback = new URL(app.callbackUrl);
  } catch {
    return false;
  }
  return (
    given.protocol === callback.protocol &&
    given.host === callback.host &&
    (given.pathname === callback.pathname ||
      given.pathname.startsWith(callback.pathname.replace(/\/?$/, '/')))
  );
}

export function oauthRoutes(sim: GitHubSimulator): Hono {
  const appByClientId = (clientId: string | undefined) =>
    [...sim.state.apps.values()].find((app) => app.clientId === clientId);

  const refuse = (c: Context, where: string, message: string, status: 400 | 404 = 400) => {
    sim.violations.record({ kind: 'invalid-request', where, message });
    return c.text(message, status);
  };

  return new Hono()
    .get('/login/oauth/authorize', (c) => {
      const where = 'GET /login/oauth/authorize';
      const query = c.req.query();
      const unknown = Object.keys(query).filter((name) => !AUTHORIZE_PARAMETERS.has(name));
      if (unknown.length > 0) return refuse(c, where, `unknown parameters: ${unknown.join(', ')}`);
      const app = appByClientId(query.client_id);
      if (!app) return refuse(c, where, `no app has the client_id ${query.client_id}`, 404);
      if (!redirectAllowed(app, query.redirect_uri)) {
        return refuse(
          c,
          where,
          'The redirect_uri MUST match the registered callback URL for this application.',
        );
      }
      const login = sim.oauth.sessionLogin(getCookie(c, SESSION_COOKIE));
      if (!login) {
        const returnTo = new URL(c.req.url);
        return c.redirect(
          `/login?return_to=${encodeURIComponent(returnTo.pathname + returnTo.search)}`,
          302,
        );
      }
      const code = sim.oauth.issueCode(
        { appId: app.id, login, redirectUri: query.redirect_uri },
        sim.clock.now(),
      );
      const back = new URL(query.redirect_uri ?? app.callbackUrl!);
      back.searchParams.set('code', code);
      if (query.state !== undefined) back.searchParams.set('state', query.state);
      return c.redirect(back.toString(), 302);
    })
    .post('/login/oauth/access_token', async (c) => {
      const where = 'POST /login/oauth/access_token';
      const type = c.req.header('content-type') ?? '';
      let body: Record<string, unknown> = {};
      if (/^application\/json\b/i.test(type)) {
        const parsed: unknown = await c.req.json().catch(() => undefined);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          return refuse(c, where, 'the body is not a JSON object');
        }
        body = parsed as Record<string, unknown>;
      } else if (/^application\/x-www-form-urlencoded\b/i.test(type)) {
        body = Object.fromEntries(new URLSearchParams(await c.req.text()));
      }
      const params: Record<string, unknown> = { ...c.req.query(), ...body };
      const unknown = Object.keys(params).filter((name) => !TOKEN_PARAMETERS.has(name));
      if (unknown.length > 0) return refuse(c, where, `unknown parameters: ${unknown.join(', ')}`);
      for (const [name, value] of Object.entries(params)) {
        if (typeof value !== 'string') return refuse(c, where, `${name} must be a string`);
      }
      const { client_id, client_secret, code, redirect_uri, grant_type } = params as Record<
        string,
        string | undefined
      >;
      if (grant_type !== undefined && grant_type !== 'authorization_code') {
        sim.violations.record({
          kind: 'not-simulated',
          where,
          message: `grant_type ${grant_type} is GitHub's, but the simulator does not serve it`,
        });
        return c.text('Not simulated', 404);
      }
      if (!client_id || !client_secret || !code) {
        return refuse(c, where, 'client_id, client_secret and code are required');
      }
      const answer = (fields: Record<string, string | number>) =>
        /\bapplication\/json\b/i.test(c.req.header('accept') ?? '')
          ? c.json(fields)
          : c.body(
              new URLSearchParams(
                Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]),
              ).toString(),
              200,
              { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
            );
      const failed = (error: string, description: string) =>
        answer({
          error,
          error_description: description,
          error_uri:
            'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors',
        });
      const app = appByClientId(client_id);
      if (!app || app.clientSecret !== client_secret) {
        return failed(
          'incorrect_client_credentials',
          'The client_id and/or client_secret passed are incorrect.',
        );
      }
      const now = sim.clock.now();
      const given = sim.oauth.takeCode(code, now);
      if (!given || given.appId !== app.id) {
        return failed('bad_verification_code', 'The code passed is incorrect or expired.');
      }
      if (given.redirectUri !== undefined && redirect_uri !== given.redirectUri) {
        return failed(
          'redirect_uri_mismatch',
          'The redirect_uri MUST match the registered callback URL for this application.',
        );
      }
      const token = sim.oauth.issueToken(given.login, app.id, now);
      return answer({
        access_token: token.token,
        expires_in: USER_TOKEN_TTL_MS / 1000,
        refresh_token: `ghr_${random(57).slice(0, 76)}`,
        refresh_token_expires_in: 15_897_600,
        token_type: 'bearer',
        scope: '',
      });
    })
    .get('/login', (c) => {
      const returnTo = c.req.query('return_to') ?? '/';
      return c.html(
        html`<!doctype html>
          <html lang="en">
            <head>
              <meta charset="utf-8" />
              <title>Sign in to the GitHub simulator</title>
            </head>
            <body>
              <h1>Sign in to the GitHub simulator</h1>
              <p>Any login will do: the simulator has no passwords.</p>
              <form method="post" action="/session">
                <input type="hidden" name="return_to" value="${returnTo}" />
                <label>Login <input name="login" required pattern="[A-Za-z0-9-]{1,39}" /></label>
                <button type="submit">Sign in</button>
              </form>
            </body>
          </html>`,
      );
    })
    .post('/session', async (c) => {
      const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
      const login = form.login ?? '';
      if (!/^[A-Za-z0-9-]{1,39}$/.test(login)) return c.text('Incorrect username', 422);
      sim.state.ensureAccount(login, 'User');
      setCookie(c, SESSION_COOKIE, sim.oauth.browserSession(login), {
        httpOnly: true,
        sameSite: 'Lax',
        path: '/',
      });
      const returnTo = form.return_to ?? '/';
      return c.redirect(
        returnTo.startsWith('/') && !returnTo.startsWith('//') ? returnTo : '/',
        303,
      );
    });
}
