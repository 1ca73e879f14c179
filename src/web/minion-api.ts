/** The minion protocol v1 over HTTP (docs/api.md), under /api/v1/minion/. */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PayloadTooLargeError } from '../minions/errors.js';
import {
  ClaimRequest,
  HeartbeatRequest,
  LogChunk,
  MAX_LOG_CHUNK_BYTES,
  RegisterRequest,
  ReportRequest,
} from '../minions/schemas.js';
import type { AppEnv, MinionEnv } from './env.js';
import { bearerToken, idParam, jsonBody } from './requests.js';

/** JSON bodies: a log chunk of 1 MiB, escaped, and some room. */
const jsonLimit = bodyLimit({
  maxSize: 3 * MAX_LOG_CHUNK_BYTES,
  onError: () => {
    throw new PayloadTooLargeError('The request body is larger than a minion API body may be');
  },
});

const authenticated = new Hono<MinionEnv>()
  .use(async (c, next) => {
    c.set('minion', await c.var.tower.minions.authenticate(bearerToken(c)));
    await next();
  })
  .post('/claim', jsonLimit, async (c) => {
    const request = await jsonBody(c, ClaimRequest);
    const run = await c.var.tower.minions.claim(c.var.minion, request, c.req.raw.signal);
    return run ? c.json({ run }, 200) : c.body(null, 204);
  })
  .post('/runs/:runId/heartbeat', jsonLimit, async (c) => {
    const runId = idParam(c, 'runId');
    const request = await jsonBody(c, HeartbeatRequest);
    return c.json(await c.var.tower.minions.heartbeat(c.var.minion, runId, request), 200);
  })
  .post('/runs/:runId/logs', jsonLimit, async (c) => {
    const runId = idParam(c, 'runId');
    const chunk = await jsonBody(c, LogChunk);
    await c.var.tower.minions.appendLog(c.var.minion, runId, chunk);
    return c.body(null, 204);
  })
  .put('/runs/:runId/artifacts/:name{.+}', async (c) => {
    const runId = idParam(c, 'runId');
    const length = c.req.header('content-length');
    const entry = await c.var.tower.minions.putArtifact(c.var.minion, runId, {
      name: c.req.param('name'),
      contentType: c.req.header('content-type'),
      declaredLength: length === undefined ? undefined : Number(length),
      body: c.req.raw.body,
    });
    return c.json(entry, 201);
  })
  .post('/runs/:runId/report', jsonLimit, async (c) => {
    const runId = idParam(c, 'runId');
    const request = await jsonBody(c, ReportRequest);
    return c.json(await c.var.tower.minions.report(c.var.minion, runId, request), 200);
  });

export const minionApiRoutes = new Hono<AppEnv>()
  .post('/api/v1/minion/register', jsonLimit, async (c) => {
    const { minions } = c.var.tower;
    const token = bearerToken(c);
    // The token before the body: a stranger learns nothing about the schema.
    minions.authorizeRegistration(token);
    const request = await jsonBody(c, RegisterRequest);
    return c.json(await minions.register(token, request), 201);
  })
  .route('/api/v1/minion', authenticated);
