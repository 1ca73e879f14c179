import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { NotConfiguredError, WebhookRejectedError } from '../lib/errors.js';
import type { AppEnv } from './env.js';

/** GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

export const webhookRoutes = new Hono<AppEnv>().post(
  '/api/github/webhooks',
  async (c, next) => {
    await next();
    if (c.error instanceof WebhookRejectedError) {
      // The event name is unsigned here: the metrics take it only from a fixed set.
      c.var.tower.metrics.webhooksReceived.inc({
        event: c.req.header('x-github-event'),
        outcome: 'rejected',
      });
    }
  },
  // Refused on its Content-Length at once, or, sent chunked, as soon as it
  // passes the limit while being read: never held whole before the signature check.
  bodyLimit({
    maxSize: MAX_WEBHOOK_BYTES,
    onError: () => {
      throw new WebhookRejectedError('Body is larger than 25 MiB, the most GitHub sends', 413);
    },
  }),
  async (c) => {
    const { webhooks, metrics } = c.var.tower;
    if (!webhooks) {
      throw new NotConfiguredError(
        'No GitHub App is configured on this Tower: set TOWER_APP_ID, TOWER_PRIVATE_KEY and TOWER_WEBHOOK_SECRET',
      );
    }
    const outcome = await webhooks.receive({
      deliveryId: c.req.header('x-github-delivery'),
      event: c.req.header('x-github-event'),
      signature: c.req.header('x-hub-signature-256'),
      body: await c.req.text(),
    });
    metrics.webhooksReceived.inc({ event: outcome.event, outcome: outcome.status });
    // Stored or already stored: either way GitHub has nothing to redeliver.
    return c.json(outcome, 202);
  },
);
