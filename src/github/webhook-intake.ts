import { createHash } from 'node:crypto';
import { verify } from '@octokit/webhooks-methods';
import { z } from 'zod';
import type { Clock } from '../lib/clock.js';
import { WebhookRejectedError } from '../lib/errors.js';

/** Where verified deliveries go; the database implements it. */
export type DeliveryInbox = {
  record(delivery: {
    id: string;
    event: string;
    action: string | undefined;
    installationId: number | undefined;
    payload: unknown;
    /** SHA-256 of the event name and the raw body (`webhookBodyHash`). */
    bodyHash: string;
    receivedAt: Date;
  }): Promise<{ stored: boolean }>;
};

export type IncomingWebhook = {
  deliveryId: string | undefined;
  event: string | undefined;
  signature: string | undefined;
  body: string;
};

export type IntakeOutcome = { deliveryId: string; event: string; status: 'stored' | 'duplicate' };

/** Only the fields intake needs; handlers parse the rest. */
const WebhookEnvelope = z.looseObject({
  action: z.string().optional(),
  installation: z.looseObject({ id: z.number().int() }).optional(),
});

const DeliveryId = z.string().min(1).max(100);
const EventName = z.string().regex(/^[a-z_]{1,64}$/);

export type WebhookIntake = { receive(webhook: IncomingWebhook): Promise<IntakeOutcome> };

/**
 * Verifies a webhook's signature and stores it once per delivery id and once
 * per body. Nothing is processed here: the answer goes back to GitHub at
 * once, and the delivery processor takes it from the database.
 */
export function createWebhookIntake({
  secret,
  inbox,
  clock,
  onStored,
}: {
  secret: string;
  inbox: DeliveryInbox;
  clock: Clock;
  onStored?: () => void;
}): WebhookIntake {
  return {
    async receive({ deliveryId, event, signature, body }) {
      if (!signature) {
        throw new WebhookRejectedError('Missing X-Hub-Signature-256 header', 401);
      }
      if (!(await verifySignature(secret, body, signature))) {
        throw new WebhookRejectedError(
          'Signature does not match: check that TOWER_WEBHOOK_SECRET is the secret set on the GitHub App',
          401,
        );
      }
      const id = DeliveryId.safeParse(deliveryId);
      if (!id.success)
        throw new WebhookRejectedError('Missing or invalid X-GitHub-Delivery header', 400);
      const name = EventName.safeParse(event);
      if (!name.success)
        throw new WebhookRejectedError('Missing or invalid X-GitHub-Event header', 400);

      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw new WebhookRejectedError('Body is not JSON', 400);
      }
      const envelope = WebhookEnvelope.safeParse(json);
      if (!envelope.success) {
        throw new WebhookRejectedError('Body is not a GitHub webhook payload object', 400);
      }
      const { stored } = await inbox.record({
        id: id.data,
        event: name.data,
        action: envelope.data.action,
        installationId: envelope.data.installation?.id,
        payload: json,
        bodyHash: webhookBodyHash(name.data, body),
        receivedAt: clock.now(),
      });
      if (stored) onStored?.();
      return { deliveryId: id.data, event: name.data, status: stored ? 'stored' : 'duplicate' };
    },
  };
}

/**
 * The delivery id is not signed: a captured body posted again under a new id
 * would pass the signature check. Each of GitHub's deliveries differs in its
 * body (times, ids), so the same event and body twice is a replay, answered
 * as a duplicate.
 */
export function webhookBodyHash(event: string, body: string): string {
  return createHash('sha256').update(event).update('\n').update(body).digest('hex');
}

async function verifySignature(secret: string, body: string, signature: string): Promise<boolean> {
  try {
    return await verify(secret, body, signature);
  } catch {
    // A malformed signature header is a mismatch, not a server error.
    return false;
  }
}
