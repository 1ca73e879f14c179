/**
 * The simulator's HTTP surface: GitHub's REST API under /api/v3, every
 * request matched and validated against the OpenAPI description, every
 * response checked against it too.
 */
import { Hono } from 'hono';
import { errorMessage } from '../lib/errors.js';
import { authenticate } from './auth.js';
import { handlers } from './handlers.js';
import { oauthRoutes } from './oauth.js';
import { ApiError, type ApiResponse } from './rest.js';
import type { GitHubSimulator } from './simulator.js';

export const API_PREFIX = '/api/v3';

/** Requests that do not count as content creation, though they are not GETs. */
const notContentCreating = new Set(['apps/create-installation-access-token']);

/** Operations an app may call with its JWT; everything else needs an installation token. */
const appOperations = new Set([
  'apps/get-authenticated',
  'apps/list-installations',
  'apps/get-installation',
  'apps/create-installation-access-token',
  'apps/get-repo-installation',
]);

/** What a person's user token (sign-in with GitHub) may call here; GitHub allows more. */
const userOperations = new Set(['users/get-authenticated', 'repos/get']);

export function createSandboxApp(sim: GitHubSimulator): Hono {
  const app = new Hono();
  app.route('/', oauthRoutes(sim));

  app.all(`${API_PREFIX}/*`, async (c) => {
    const url = new URL(c.req.url);
    const rawPath = url.pathname.slice(API_PREFIX.length) || '/';
    const method = c.req.method.toUpperCase();
    const error = (
      status: number,
      message: string,
      headers: Record<string, string> = {},
      extra = {},
    ) =>
      c.json(
        {
          message,
          documentation_url: 'https://docs.github.com/rest',
          status: String(status),
          ...extra,
        },
        status as 404,
        headers,
      );

    const matched = sim.openapi.match(method, rawPath);
    if (!('operation' in matched)) {
      sim.violations.record({
        kind: 'unknown-route',
        where: `${method} ${rawPath}`,
        message: matched.pathKnown
          ? `GitHub has no ${method} for this path`
          : 'GitHub has no such path',
      });
      return error(404, 'Not Found');
    }
    const { operation } = matched;
    const where = `${method} ${operation.template}`;
    const handler = handlers[operation.operationId];
    if (!handler) {
      sim.violations.record({
        kind: 'not-simulated',
        where,
        message: `${operation.operationId} is GitHub's, but the simulator does not serve it`,
      });
      return error(404, 'Not Found');
    }

    const now = sim.clock.now();
    const credential = authenticate(c.req.header('authorization'), now, {
      publicKeyFor: (id) => sim.state.apps.get(id)?.publicKeyPem,
      tokens: sim.tokens,
      userTokens: sim.oauth,
    });
    if ('status' in credential) return error(401, credential.message);
    if (credential.kind === 'none') return error(401, 'Requires authentication');
    const usesJwt = credential.kind === 'app';
    if (usesJwt !== appOperations.has(operation.operationId)) {
      return error(
        usesJwt ? 401 : 403,
        usesJwt
          ? 'A JSON web token cannot be used for this endpoint: use an installation access token'
          : 'Resource not accessible by integration',
      );
    }
    const installation =
      credential.kind === 'installation'
        ? sim.state.installations.get(credential.installationId)
        : undefined;
    if (credential.kind === 'installation' && !installation) return error(401, 'Bad credentials');
    const user = credential.kind === 'user' ? sim.state.account(credential.login) : undefined;
    if (credential.kind === 'user' && !user) return error(401, 'Bad credentials');
    if (credential.kind === 'user' && !userOperations.has(operation.operationId)) {
      sim.violations.record({
        kind: 'not-simulated',
        where,
        message: `${operation.operationId} with a user token is GitHub's, but the simulator does not serve it`,
      });
      return error(403, 'Resource not accessible by integration');
    }
    const appId =
      credential.kind === 'app' || credential.kind === 'user'
        ? credential.appId
        : installation!.appId;
    const ghApp = sim.state.apps.get(appId);
    if (!ghApp) return error(401, 'Bad credentials');

    const contentCreating = method !== 'GET' && !notContentCreating.has(operation.operationId);
    const limited = sim.limiter.take(
      installation ? String(installation.id) : user ? `user-${user.login}` : `app-${appId}`,
      now,
      contentCreating,
    );
    sim.requests.push({
      operationId: operation.operationId,
      installationId: installation?.id,
      contentCreating,
      refused: !limited.ok,
      at: now,
    });
    if (!limited.ok) {
      return c.json(
        { message: limited.message, documentation_url: limited.documentationUrl },
        403,
        limited.headers,
      );
    }

    const rawBody = method === 'GET' ? undefined : await c.req.text();
    const checked = sim.openapi.checkRequest(
      matched,
      Object.fromEntries(url.searchParams),
      rawBody,
    );
    if (!checked.ok) {
      sim.violations.record({ kind: 'invalid-request', where, message: checked.message });
      return c.json(
        {
          message: checked.message,
          documentation_url: operation.documentationUrl,
          status: String(checked.status),
        },
        checked.status,
        limited.headers,
      );
    }

    let repository;
    const { owner, repo } = checked.params;
    if (typeof owner === 'string' && typeof repo === 'string') {
      repository = sim.state.repository(owner, repo);
      // A repository the installation cannot reach does not exist, as far as it knows.
      if (!repository || (installation && !installation.repositoryIds.includes(repository.id))) {
        return error(404, 'Not Found', limited.headers);
      }
      // A user token reaches a private repository the person may read and the app is installed on.
      if (
        user &&
        repository.private &&
        (sim.state.permission(repository, user.login) === 'none' ||
          !sim.state.installationFor(repository.id, appId))
      ) {
        return error(404, 'Not Found', limited.headers);
      }
    }

    let response: ApiResponse;
    try {
      response = await handler(
        {
          params: checked.params,
          query: checked.query,
          body: checked.body,
          app: ghApp,
          installation,
          user,
          repository,
        },
        sim,
      );
    } catch (thrown) {
      if (thrown instanceof ApiError) {
        response = {
          status: thrown.status,
          body: {
            message: thrown.message,
            documentation_url: operation.documentationUrl,
            ...thrown.extra,
          },
        };
      } else {
        sim.violations.record({
          kind: 'invalid-response',
          where,
          message: `simulator error: ${errorMessage(thrown)}`,
        });
        return error(500, 'Server Error', limited.headers);
      }
    }

    if (response.status < 400 && response.body !== undefined) {
      const problems = sim.openapi.checkResponse(operation, response.status, response.body);
      if (problems.length > 0) {
        sim.violations.record({
          kind: 'invalid-response',
          where,
          message: problems.slice(0, 10).join('; '),
        });
      }
    }
    const headers = { ...limited.headers, ...response.headers };
    if (response.body === undefined) return c.body(null, response.status as 204, headers);
    return c.json(response.body, response.status as 200, headers);
  });

  app.notFound((c) => c.json({ message: 'Not Found' }, 404));
  return app;
}
