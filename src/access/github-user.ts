/**
 * GitHub as a signed-in person sees it: the GitHub App's OAuth user
 * authorization (the web flow), who the token belongs to, and whether it
 * may read a repository. Plain HTTP: these calls act as the person, not as
 * the app, so they do not go through the app's GitHub port.
 */
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import { AccessCheckFailedError, SignInError } from './errors.js';

export type GitHubUser = { id: number; login: string };

const TokenAnswer = z.union([
  z.object({ access_token: z.string().min(1).max(1000), expires_in: z.number().optional() }),
  z.object({ error: z.string(), error_description: z.string().optional() }),
]);
const UserAnswer = z.object({ id: z.number().int().positive(), login: z.string().min(1) });

/** GitHub answers in time or not at all, as far as a page is concerned. */
const TIMEOUT_MS = 10_000;

export function createGitHubUserClient(options: {
  clientId: string;
  clientSecret: string;
  /** github.com, a GitHub Enterprise Server, or the simulator. */
  githubUrl: string;
  apiUrl: string;
  /** Where GitHub sends the person back: Tower's /login/callback. */
  callbackUrl: string;
  fetch?: typeof fetch;
}) {
  const doFetch = options.fetch ?? fetch;

  async function call(url: string, init: RequestInit): Promise<Response> {
    try {
      return await doFetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new AccessCheckFailedError(`GitHub did not answer: ${errorMessage(error)}`);
    }
  }

  const api = (token: string) => ({
    authorization: `Bearer ${token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  });

  return {
    authorizeUrl(state: string): string {
      const url = new URL(`${options.githubUrl}/login/oauth/authorize`);
      url.searchParams.set('client_id', options.clientId);
      url.searchParams.set('redirect_uri', options.callbackUrl);
      url.searchParams.set('state', state);
      return url.toString();
    },

    /** The user token for the code GitHub handed back; GitHub's refusal is a SignInError. */
    async exchange(code: string): Promise<{ token: string; expiresInMs: number | undefined }> {
      const response = await call(`${options.githubUrl}/login/oauth/access_token`, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body: JSON.stringify({
          client_id: options.clientId,
          client_secret: options.clientSecret,
          code,
          redirect_uri: options.callbackUrl,
        }),
      });
      const parsed = TokenAnswer.safeParse(await response.json().catch(() => undefined));
      if (!response.ok || !parsed.success) {
        throw new AccessCheckFailedError(
          `GitHub answered the sign-in code with status ${response.status}`,
        );
      }
      if ('error' in parsed.data) {
        throw new SignInError(
          `GitHub refused the sign-in: ${parsed.data.error_description ?? parsed.data.error}`,
        );
      }
      const seconds = parsed.data.expires_in;
      return { token: parsed.data.access_token, expiresInMs: seconds && seconds * 1000 };
    },

    async user(token: string): Promise<GitHubUser> {
      const response = await call(`${options.apiUrl}/user`, { headers: api(token) });
      const parsed = UserAnswer.safeParse(await response.json().catch(() => undefined));
      if (!response.ok || !parsed.success) {
        throw new AccessCheckFailedError(`GitHub answered GET /user with ${response.status}`);
      }
      return { id: parsed.data.id, login: parsed.data.login };
    },

    /**
     * Whether the token's owner may read the repository: GitHub shows a
     * repository only to those who may (404 otherwise). A token GitHub no
     * longer honours (401) reads nothing.
     */
    async canRead(token: string, fullName: string): Promise<boolean> {
      const [owner = '', repo = ''] = fullName.split('/');
      const response = await call(
        `${options.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`,
        { headers: api(token) },
      );
      await response.body?.cancel();
      if (response.ok) return true;
      if ([401, 403, 404].includes(response.status)) return false;
      throw new AccessCheckFailedError(
        `GitHub answered GET /repos/${fullName} with ${response.status}`,
      );
    },
  };
}

export type GitHubUserClient = ReturnType<typeof createGitHubUserClient>;
