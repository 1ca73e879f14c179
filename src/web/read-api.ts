/**
 * The read API v1 (docs/api.md): graphs, runs, manifests, artifacts, logs
 * (followed as server-sent events), minions, the pending jobs and each
 * repository's landing queues. Every route is guarded where it is mounted
 * (src/web/guards.ts): a private repository's data needs read access, the
 * minion inventory and the pending jobs an operator token.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { NotConfiguredError } from '../lib/errors.js';
import { NotFoundError } from '../minions/errors.js';
import { clientOf } from './clients.js';
import type { AppEnv } from './env.js';
import { operatorsOnly, readsGraph, readsRepository, readsRun } from './guards.js';
import { GraphPageQuery, MinionPageQuery, idParam, parseQuery } from './requests.js';

export const readApiRoutes = new Hono<AppEnv>()
  // `/runs/:id/*` also matches `/runs/:id`.
  .use('/api/v1/repos/:owner/:repo/*', readsRepository)
  .use('/api/v1/graphs/:id', readsGraph)
  .use('/api/v1/runs/:id/*', readsRun)
  .use('/api/v1/minions', operatorsOnly)
  .use('/api/v1/queue', operatorsOnly)
  .get('/api/v1/repos/:owner/:repo/queue', async (c) => {
    const { landing } = c.var.tower;
    if (!landing) {
      throw new NotConfiguredError('landing queues need the GitHub App, which is not configured');
    }
    const fullName = `${c.req.param('owner')}/${c.req.param('repo')}`;
    const view = await landing.view(fullName);
    if (!view) throw new NotFoundError(`Tower is not installed on ${fullName}`);
    return c.json(view);
  })
  .get('/api/v1/graphs/:id', async (c) => {
    const id = idParam(c, 'id');
    const page = parseQuery(c, GraphPageQuery);
    return c.json(await c.var.tower.reads.graph(id, page));
  })
  .get('/api/v1/runs/:id', async (c) => c.json(await c.var.tower.reads.run(idParam(c, 'id'))))
  .get('/api/v1/runs/:id/manifest', async (c) =>
    c.json(await c.var.tower.reads.manifest(idParam(c, 'id'))),
  )
  .get('/api/v1/runs/:id/artifacts/:name{.+}', async (c) => {
    const artifact = await c.var.tower.reads.artifact(idParam(c, 'id'), c.req.param('name'));
    return c.body(artifact.body, 200, {
      'content-type': artifact.contentType,
      'content-length': String(artifact.size),
      // A minion chooses the content type: an HTML artifact must not run as Tower's own page.
      'content-security-policy': 'sandbox',
      'x-content-type-options': 'nosniff',
    });
  })
  .get('/api/v1/runs/:id/log', async (c) => {
    const { reads } = c.var.tower;
    const runId = idParam(c, 'id');
    const follow = c.req.query('follow');
    if (follow === undefined || follow === '0' || follow === 'false') {
      // Streamed from the database a page at a time, as the reader takes it.
      return c.body(await reads.log(runId), 200, { 'content-type': 'text/plain; charset=UTF-8' });
    }
    // Unknown runs are a 404, and a client following too many logs a 429, before the stream starts.
    await reads.run(runId);
    const release = reads.admitFollower(clientOf(c));
    return streamSSE(c, async (stream) => {
      try {
        const aborted = new AbortController();
        stream.onAbort(() => aborted.abort());
        for await (const chunk of reads.followLog(runId, aborted.signal)) {
          await stream.writeSSE({
            event: 'log',
            id: String(chunk.seq),
            data: JSON.stringify(chunk),
          });
        }
        // The reader left, or Tower is shutting down: no end to tell.
        const run = await reads.run(runId);
        if (aborted.signal.aborted || run.state !== 'done') return;
        await stream.writeSSE({
          event: 'end',
          data: JSON.stringify({ state: run.state, result: run.result, reason: run.reason }),
        });
      } finally {
        release();
      }
    });
  })
  .get('/api/v1/minions', async (c) =>
    c.json(await c.var.tower.reads.minions(parseQuery(c, MinionPageQuery))),
  )
  .get('/api/v1/queue', async (c) => c.json({ queue: await c.var.tower.reads.queue() }));
