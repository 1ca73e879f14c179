import { Hono } from 'hono';
import type { AppEnv } from './env.js';
import { operatorsOnly } from './guards.js';

export const healthRoutes = new Hono<AppEnv>()
  .get('/healthz', async (c) => {
    const { version, database, logger } = c.var.tower;
    try {
      await database.ping();
      return c.json({ status: 'ok', version, database: { kind: database.kind, status: 'ok' } });
    } catch (error) {
      // The driver's message can name hosts, users and paths: it goes to the log, not to callers.
      logger.error({ err: error }, 'health check: database unreachable');
      return c.json(
        {
          status: 'error',
          version,
          database: {
            kind: database.kind,
            status: 'unreachable',
            error: 'The database did not answer; the server log has the details',
          },
        },
        503,
      );
    }
  })
  .get('/metrics', operatorsOnly, async (c) => {
    const { registry } = c.var.tower.metrics;
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });
