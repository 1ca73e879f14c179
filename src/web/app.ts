import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { routePath } from 'hono/route';
import { NotConfiguredError, TowerError, WebhookRejectedError } from '../lib/errors.js';
import type { AppEnv, WebDeps } from './env.js';
import { healthRoutes } from './health.js';
import { webhookRoutes } from './webhooks.js';

export type { WebDeps } from './env.js';

/** Tower's HTTP surface in one Hono app; sub-apps are composed with `route()`. */
export function createWebApp(deps: WebDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    c.set('tower', deps);
    const start = performance.now();
    await next();
    deps.metrics.httpRequestDuration.observe(
      { method: c.req.method, route: routePath(c, -1), status: String(c.res.status) },
      (performance.now() - start) / 1000,
    );
  });

  app.route('/', healthRoutes);
  app.route('/', webhookRoutes);

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
    if (error instanceof TowerError) {
      return c.json({ error: 'bad_request', message: error.message }, 400);
    }
    deps.logger.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return c.json({ error: 'internal', message: 'Internal server error' }, 500);
  });

  return app;
}
