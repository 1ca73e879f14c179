import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { routePath } from 'hono/route';
import {
  AccessCheckFailedError,
  CsrfError,
  ForbiddenError,
  SignInError,
  UnauthenticatedError,
} from '../access/errors.js';
import { NotConfiguredError, TowerError, WebhookRejectedError } from '../lib/errors.js';
import {
  InvalidRequestError,
  MinionForbiddenError,
  MinionQuarantinedError,
  MinionUnauthorizedError,
  NotFoundError,
  PayloadTooLargeError,
  RegistrationDisabledError,
  RegistrationForbiddenError,
  RunConflictError,
  ShuttingDownError,
  TooManyRequestsError,
} from '../minions/errors.js';
import type { AppEnv, WebDeps } from './env.js';
import { healthRoutes } from './health.js';
import { minionApiRoutes } from './minion-api.js';
import { pageRoutes } from './pages.js';
import { readApiRoutes } from './read-api.js';
import { signInRoutes } from './sign-in.js';
import { webhookRoutes } from './webhooks.js';

export type { WebDeps } from './env.js';

/** Tower's HTTP surface in one Hono app; sub-apps are composed with `route()`. */
export function createWebApp(deps: WebDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    c.set('tower', deps);
    const start = performance.now();
    await next();
    // The route's pattern, never the raw path: labels come from a fixed set (src/lib/metrics.ts).
    deps.metrics.httpRequestDuration.observe(
      { method: c.req.method, route: routePath(c, -1), status: c.res.status },
      (performance.now() - start) / 1000,
    );
  });

  app.route('/', healthRoutes);
  app.route('/', webhookRoutes);
  app.route('/', minionApiRoutes);
  app.route('/', readApiRoutes);
  app.route('/', signInRoutes);
  app.route('/', pageRoutes);

  app.notFound((c) =>
    c.json({ error: 'not_found', message: `No route for ${c.req.method} ${c.req.path}` }, 404),
  );

  // The one place where errors become HTTP responses.
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    if (error instanceof WebhookRejectedError) {
      return c.json({ error: 'webhook_rejected', message: error.message }, error.status);
    }
    if (error instanceof NotConfiguredError) {
      return c.json({ error: 'not_configured', message: error.message }, 503);
    }
    if (error instanceof InvalidRequestError) {
      return c.json({ error: 'invalid_request', message: error.message }, 400);
    }
    if (error instanceof MinionUnauthorizedError) {
      return c.json({ error: 'unauthorized', message: error.message }, 401, {
        'www-authenticate': 'Bearer',
      });
    }
    if (error instanceof MinionQuarantinedError) {
      return c.json({ error: 'quarantined', message: error.message }, 403);
    }
    if (error instanceof MinionForbiddenError) {
      return c.json({ error: 'forbidden', message: error.message }, 403);
    }
    if (error instanceof UnauthenticatedError) {
      return c.json({ error: 'unauthorized', message: error.message }, 401, {
        'www-authenticate': 'Bearer',
      });
    }
    if (error instanceof ForbiddenError || error instanceof CsrfError) {
      return c.json({ error: 'forbidden', message: error.message }, 403);
    }
    if (error instanceof SignInError) {
      return c.json({ error: 'sign_in_failed', message: error.message }, 400);
    }
    if (error instanceof AccessCheckFailedError) {
      deps.logger.warn({ err: error, path: c.req.path }, 'access check failed');
      return c.json(
        { error: 'github_unavailable', message: 'GitHub could not confirm access; try again' },
        502,
      );
    }
    if (error instanceof NotFoundError) {
      return c.json({ error: 'not_found', message: error.message }, 404);
    }
    if (error instanceof RunConflictError) {
      return c.json({ error: error.code, message: error.message }, 409);
    }
    if (error instanceof PayloadTooLargeError) {
      return c.json({ error: 'payload_too_large', message: error.message }, 413);
    }
    if (error instanceof TooManyRequestsError) {
      return c.json({ error: 'too_many_requests', message: error.message }, 429, {
        'retry-after': String(error.retryAfterSeconds),
      });
    }
    if (error instanceof ShuttingDownError) {
      return c.json({ error: 'shutting_down', message: error.message }, 503, {
        'retry-after': String(error.retryAfterSeconds),
      });
    }
    if (error instanceof RegistrationDisabledError) {
      return c.json({ error: 'not_configured', message: error.message }, 503);
    }
    if (error instanceof RegistrationForbiddenError) {
      return c.json({ error: 'forbidden', message: error.message }, 403);
    }
    if (error instanceof TowerError) {
      return c.json({ error: 'bad_request', message: error.message }, 400);
    }
    deps.logger.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return c.json({ error: 'internal', message: 'Internal server error' }, 500);
  });

  return app;
}
