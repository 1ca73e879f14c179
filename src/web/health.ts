import { Hono } from 'hono';
import { errorMessage } from '../lib/errors.js';
import type { AppEnv } from './env.js';

export const healthRoutes = new Hono<AppEnv>()
  .get('/healthz', async (c) => {
    const { version, database } = c.var.tower;
    try {
      await database.ping();
      return c.json({ status: 'ok', version, database: { kind: database.kind, status: 'ok' } });
    } catch (error) {
      return c.json(
        {
          status: 'error',
          version,
          database: { kind: database.kind, status: 'unreachable', error: errorMessage(error) },
        },
        503,
      );
    }
  })
  .get('/metrics', async (c) => {
    const { registry } = c.var.tower.metrics;
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });
