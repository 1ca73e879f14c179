import type { Access, Viewer } from '../access/access.js';
import type { LandingRunner } from '../autoland/runner.js';
import type { WebhookIntake } from '../github/webhook-intake.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../lib/metrics.js';
import type { Minion, MinionProtocol } from '../minions/protocol.js';
import type { Reads } from '../minions/reads.js';

/** What the routes need, handed to them on `c.var.tower`. */
export type WebDeps = {
  version: string;
  database: { kind: 'pglite' | 'postgres'; ping(): Promise<void> };
  metrics: Metrics;
  /** Absent when no GitHub App is configured. */
  webhooks: WebhookIntake | undefined;
  /** The minion protocol v1 (src/web/minion-api.ts). */
  minions: MinionProtocol;
  /** What the read API shows (src/web/read-api.ts). */
  reads: Reads;
  /** The landing queues (src/autoland/); absent when no GitHub App is configured. */
  landing: Pick<LandingRunner, 'view'> | undefined;
  logger: Logger;
  /** Who may see what (src/access/): every read route and page goes through it. */
  access: Access;
  /** Tower's public URL: the origin state-changing page requests must come from. */
  publicUrl: string;
};

/** `viewer` is set by the first guard that needs it (src/web/guards.ts). */
export type AppEnv = { Variables: { tower: WebDeps; viewer: Viewer | undefined } };

/** Routes a minion calls with its credential: the authenticated minion is on `c.var.minion`. */
export type MinionEnv = { Variables: { tower: WebDeps; minion: Minion } };
