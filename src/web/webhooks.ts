import { Hono } from 'hono';
import { NotConfiguredError, WebhookRejectedError } from '../lib/errors.js';
import type { AppEnv } from './env.js';

export const webhookRoutes = new Hono<AppEnv>().post('/api/github/webhooks', async (c) => {
  const { webhooks, metrics } = c.var.tower;
  const event = c.req.header('x-github-event') ?? 'unknown';
  if (!webhooks) {
    throw new NotConfiguredError(
      'No GitHub App is configured on this Tower: set TOWER_APP_ID, TOWER_PRIVATE_KEY and TOWER_WEBHOOK_SECRET',
    );
  }
  try {
    const outcome = await webhooks.receive({
      deliveryId: c.req.header('x-github-delivery'),
      event: c.req.header('x-github-event'),
      signature: c.req.header('x-hub-signature-256'),
      body: await c.req.text(),
    });
    metrics.webhooksReceived.inc({ event: outcome.event, outcome: outcome.status });
    // Stored or already stored: either way GitHub has nothing to redeliver.
    return c.json(outcome, 202);
  } catch (error) {
    if (error instanceof WebhookRejectedError) {
      metrics.webhooksReceived.inc({ event, outcome: 'rejected' });
    }
    throw error;
  }
});
