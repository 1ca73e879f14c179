import type { WebhookIntake } from '../github/webhook-intake.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../lib/metrics.js';

/** What the routes need, handed to them on `c.var.tower`. */
export type WebDeps = {
  version: string;
  database: { kind: 'pglite' | 'postgres'; ping(): Promise<void> };
  metrics: Metrics;
  /** Absent when no GitHub App is configured. */
  webhooks: WebhookIntake | undefined;
  logger: Logger;
};

export type AppEnv = { Variables: { tower: WebDeps } };
