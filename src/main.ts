/**
 * The composition root: builds Tower from its configuration and starts it.
 * Nothing imports this file but the command line and the tests.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { Probot } from 'probot';
import type { Config } from './config/config.js';
import { openDatabase, type Database } from './db/connection.js';
import { createCheckReportQueries } from './db/check-reports.js';
import { createDeliveryQueries } from './db/deliveries.js';
import { createEventQueries } from './db/events.js';
import { createGitHubBudget, type ContentLimits, type GitHubBudget } from './db/github-budget.js';
import { createCommentQueries } from './db/outgoing-comments.js';
import { createInstallationQueries } from './db/installations.js';
import { createCheckPublisher, type CheckPublisher } from './checks/publisher.js';
import { createCommentSender, type CommentSender } from './github/comment-outbox.js';
import { createDeliveryProcessor, type DeliveryProcessor } from './github/delivery-processor.js';
import { registerEventHandlers } from './github/event-handlers.js';
import { createLandingRunner, type LandingRunner } from './autoland/runner.js';
import { createLandingStore } from './db/landing.js';
import { createOctokitPort } from './github/octokit-port.js';
import type { GitHubPort } from './github/port.js';
import { createGitHubRepositoryAccess } from './github/repository-access.js';
import { registerInstallationHandlers } from './github/installation-handlers.js';
import { createWebhookIntake, type WebhookIntake } from './github/webhook-intake.js';
import { systemClock, type Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { createMetrics } from './lib/metrics.js';
import { version } from './lib/version.js';
import {
  artifactsDirectory,
  createFileArtifactStore,
  type ArtifactStore,
} from './minions/artifact-store.js';
import { createMaintenance, type Maintenance } from './minions/maintenance.js';
import { createInProcessNotifier, createPostgresNotifier } from './minions/notifier.js';
import { createMinionAgent, hostTags, type MinionAgent } from './minions/agent.js';
import { createMinionProtocol, type RepositoryAccess } from './minions/protocol.js';
import { createReads } from './minions/reads.js';
import { createGraphReports } from './minions/reports.js';
import { createRunSignals } from './minions/run-signals.js';
import { createNotifyAdapter, NotifyError, type NotifyPort } from './scheduler/notify.js';
import { createScheduler, type Scheduler } from './scheduler/scheduler.js';
import { createServerJobRunner, type ServerJobRunner } from './scheduler/server-job-runner.js';
import { createWebApp } from './web/app.js';
import type { AppEnv } from './web/env.js';
import type { DesiredCheckRun } from './checks/render.js';

/** Requests of the primary rate limit kept for reading (.tower/, permissions) when it runs low. */
const PRIMARY_RESERVE = 200;

/** A static report's check run, as the publisher rendered and stored it. */
type DesiredStatic = DesiredCheckRun | null;

export type TowerDeps = {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** Where artifact bytes go; by default files under `<dataDir>/artifacts/`. */
  artifacts?: ArtifactStore;
  /** How often the maintenance loop runs (lapsed leases, timeouts), and the server-side passes. */
  maintenanceIntervalMs?: number;
  /** Where notify jobs go; by default webhooks are POSTed and comments logged (src/scheduler/notify.ts). */
  notify?: NotifyPort;
  /** Where minions fetch repositories; by default GitHub's, when a GitHub App is configured. */
  repositories?: RepositoryAccess;
  /** GitHub, behind Tower's port; by default Octokit on the configured API URL, with a GitHub App. */
  github?: GitHubPort;
  /** The content-creation budget per installation; by default GitHub's limits less a margin. */
  contentLimits?: ContentLimits;
};

export type RunningTower = {
  url: string;
  database: Database;
  /** Processes stored deliveries now (tests); absent without a GitHub App. */
  processor: DeliveryProcessor | undefined;
  /** Stop accepting, finish in-flight work, close the database. */
  close(): Promise<void>;
};

/** Opens and migrates the database. */
export async function openMigratedDatabase(config: Config, logger: Logger): Promise<Database> {
  const database = await openDatabase(config.database);
  try {
    await database.migrate();
  } catch (error) {
    await database.close();
    throw error;
  }
  logger.info({ database: database.kind }, 'database ready');
  return database;
}

export type Tower = {
  app: Hono<AppEnv>;
  /** Processes stored deliveries; absent without a GitHub App. */
  processor: DeliveryProcessor | undefined;
  /** Publishes check runs; absent without a GitHub App. startTower starts it; tests call `tick()`. */
  checks: CheckPublisher | undefined;
  /** Posts queued comments; absent without a GitHub App. */
  comments: CommentSender | undefined;
  /** The landing queues; absent without a GitHub App. startTower starts it; tests call `tick()`. */
  landing: LandingRunner | undefined;
  /** The scheduler with wake-ups: what changes jobs goes through it, so waiting claims hear of it. */
  scheduler: Scheduler;
  /** Lapsed leases and timeouts; startTower runs it periodically, tests call `tick()`. */
  maintenance: Maintenance;
  /** Timers and notify jobs: at once after a change, and periodically; startTower starts it. */
  serverJobs: ServerJobRunner;
  /** Registers the minion `tower serve` runs itself, without the registration token. */
  registerEmbeddedMinion(tags: string[]): Promise<{ minionId: number; credential: string }>;
  /** Stops the maintenance loop, the server-side passes and the notifier; the database stays open. */
  close(): Promise<void>;
};

/** Builds Tower on an open, migrated database, without listening. */
export async function createTower({
  config,
  logger,
  clock = systemClock,
  database,
  artifacts = createFileArtifactStore(artifactsDirectory(config.dataDir)),
  maintenanceIntervalMs,
  notify,
  repositories = defaultRepositoryAccess(config, database),
  github: givenGitHub,
  contentLimits,
}: TowerDeps & { database: Database }): Promise<Tower> {
  const metrics = createMetrics();
  const eventQueries = createEventQueries(database.db);
  const commentQueries = createCommentQueries(database.db);
  const checkReports = createCheckReportQueries(database.db);
  const budget = createGitHubBudget(database.db, contentLimits);
  const github = givenGitHub ?? defaultGitHubPort(config, clock, budget);
  // Notify jobs' comments go on the pull request, through the comment outbox.
  const notifyPort =
    notify ??
    createNotifyAdapter({
      logger,
      comment: async (n) => {
        const target = await eventQueries.commentTarget(n.event.id);
        if (!github || !target) {
          throw new NotifyError('comments need the GitHub App, which is not configured');
        }
        if (target.pullNumber === null) {
          throw new NotifyError(
            `graph ${n.graph.id} was built for a ${n.event.type} event, not a pull request: there is nowhere to comment`,
          );
        }
        await commentQueries.enqueue({
          dedupKey: `notify:${n.runId}`,
          installationId: target.installationId,
          fullName: target.fullName,
          issueNumber: target.pullNumber,
          body: n.comment,
        });
        commentSender?.wake();
      },
    });
  let checkPublisher: CheckPublisher | undefined;
  let commentSender: CommentSender | undefined;
  let landing: LandingRunner | undefined;
  const notifier =
    database.kind === 'postgres'
      ? createPostgresNotifier({ db: database.db, logger })
      : createInProcessNotifier();
  // Waiting claims wake when jobs of their tag sets become claimable; the
  // server-side passes run when timers or notify jobs become runnable.
  const scheduler = createScheduler({
    db: database.db,
    clock,
    onClaimable: (tagSetKeys) => notifier.notify(tagSetKeys),
    logger,
    notify: notifyPort,
    onServerWork: () => serverJobs.wake(),
    onGraphChanged: () => {
      checkPublisher?.wake();
      landing?.wake();
    },
  });
  const serverJobs = createServerJobRunner({
    scheduler,
    logger,
    ...(maintenanceIntervalMs === undefined ? {} : { intervalMs: maintenanceIntervalMs }),
  });
  const runSignals = createRunSignals();
  const minions = createMinionProtocol({
    db: database.db,
    scheduler,
    clock,
    notifier,
    artifacts,
    runSignals,
    registrationToken: config.minionToken,
    publicUrl: config.publicUrl,
    ...(config.leaseSeconds === undefined ? {} : { leaseSeconds: config.leaseSeconds }),
    repositories,
    logger,
  });
  const reads = createReads({
    db: database.db,
    scheduler,
    artifacts,
    runSignals,
    publicUrl: config.publicUrl,
  });
  if (github) {
    const graphReports = createGraphReports({
      db: database.db,
      scheduler,
      artifacts,
      publicUrl: config.publicUrl,
    });
    checkPublisher = createCheckPublisher({
      store: {
        takeDue: async (now, leaseMs, limit) =>
          (await checkReports.takeDue(now, leaseMs, limit)).map((report) => ({
            ...report,
            staticCheckRun: report.staticCheckRun as DesiredStatic,
          })),
        checkRuns: (reportId) => checkReports.checkRuns(reportId),
        addCheckRun: (reportId, key, generation, name) =>
          checkReports.addCheckRun(reportId, key, generation, name),
        recordSent: (id, sent) => checkReports.recordSent(id, sent),
        release: (id, outcome) => checkReports.release(id, outcome),
      },
      budget,
      github,
      report: (graphId, { detailsUpTo }) => graphReports.report(graphId, { detailsUpTo }),
      clock,
      logger: logger.child({ component: 'checks' }),
    });
    commentSender = createCommentSender({
      outbox: commentQueries,
      budget,
      github,
      clock,
      logger: logger.child({ component: 'comments' }),
    });
    landing = createLandingRunner({
      store: createLandingStore(database.db),
      github,
      scheduler,
      events: eventQueries,
      reports: checkReports,
      budget,
      clock,
      logger: logger.child({ component: 'landing' }),
      publicUrl: config.publicUrl,
      onReports: () => checkPublisher?.wake(),
      onComments: () => commentSender?.wake(),
    });
  }
  const maintenance = createMaintenance({
    scheduler,
    logger,
    ...(maintenanceIntervalMs === undefined ? {} : { intervalMs: maintenanceIntervalMs }),
  });
  let processor: DeliveryProcessor | undefined;
  let webhooks: WebhookIntake | undefined;
  if (config.githubApp) {
    const { appId, privateKey, webhookSecret } = config.githubApp;
    const probot = new Probot({
      appId,
      privateKey,
      secret: webhookSecret,
      baseUrl: config.githubApiUrl,
      log: logger.child({ component: 'probot' }),
    });
    const port = github!;
    await probot.load((app) => {
      registerInstallationHandlers(app, { store: createInstallationQueries(database.db), clock });
      registerEventHandlers(app, {
        github: port,
        events: eventQueries,
        reports: checkReports,
        comments: commentQueries,
        checkRuns: checkReports,
        scheduler,
        ...(landing ? { landing } : {}),
        onReports: () => checkPublisher?.wake(),
        onComments: () => commentSender?.wake(),
        publicUrl: config.publicUrl,
        logger: logger.child({ component: 'github' }),
        clock,
      });
    });
    const deliveries = createDeliveryQueries(database.db);
    const deliveryProcessor = createDeliveryProcessor({
      queue: deliveries,
      // Event names are checked at intake; Probot gives unknown ones to no handler.
      handle: (webhook) => probot.receive(webhook as Parameters<Probot['receive']>[0]),
      clock,
      logger,
      onProcessed: (event, outcome) => metrics.webhooksProcessed.inc({ event, outcome }),
    });
    webhooks = createWebhookIntake({
      secret: webhookSecret,
      inbox: deliveries,
      clock,
      onStored: () => deliveryProcessor.wake(),
    });
    processor = deliveryProcessor;
    logger.info({ appId, githubApiUrl: config.githubApiUrl }, 'GitHub App configured');
  } else {
    logger.warn(
      'No GitHub App configured (TOWER_APP_ID, TOWER_PRIVATE_KEY, TOWER_WEBHOOK_SECRET): ' +
        'Tower serves its API, but refuses webhooks until one is set',
    );
  }
  if (config.minionToken === undefined) {
    logger.warn('No TOWER_MINION_TOKEN: minion registration is refused until one is set');
  }
  const app = createWebApp({
    version,
    database,
    metrics,
    webhooks,
    minions,
    reads,
    landing,
    logger,
  });
  return {
    app,
    processor,
    checks: checkPublisher,
    comments: commentSender,
    landing,
    scheduler,
    maintenance,
    serverJobs,
    registerEmbeddedMinion: (tags) =>
      minions.registerEmbedded({ name: 'embedded', tags, trust: 'trusted' }),
    async close() {
      await maintenance.stop();
      await serverJobs.stop();
      await checkPublisher?.stop();
      await commentSender?.stop();
      await landing?.stop();
      await notifier.close();
    },
  };
}

/** Opens the database, builds Tower, starts processing and listens. */
export async function startTower({
  config,
  logger,
  clock = systemClock,
}: TowerDeps): Promise<RunningTower> {
  const database = await openMigratedDatabase(config, logger);
  let server: ServerType;
  let processor: DeliveryProcessor | undefined;
  let tower: Tower;
  try {
    tower = await createTower({ config, logger, clock, database });
    processor = tower.processor;
    server = await listen(tower.app.fetch, config.host, config.port);
  } catch (error) {
    await database.close();
    throw error;
  }
  processor?.start();
  tower.maintenance.start();
  tower.serverJobs.start();
  tower.checks?.start();
  tower.comments?.start();
  tower.landing?.start();
  const address = server.address() as AddressInfo;
  const url = `http://${formatHost(config.host)}:${address.port}`;
  logger.info({ url, publicUrl: config.publicUrl, version }, 'Tower is listening');
  let minion: MinionAgent | undefined;
  if (config.embeddedMinion) {
    const tags = config.embeddedMinion.tags ?? hostTags();
    minion = createMinionAgent({
      server: url,
      workdir: join(config.dataDir, 'minion'),
      name: 'embedded',
      register: () => tower.registerEmbeddedMinion(tags),
      concurrency: config.embeddedMinion.concurrency,
      logger: logger.child({ component: 'minion' }),
    });
    try {
      await minion.start();
      logger.info(
        { tags },
        'embedded minion started (TOWER_EMBEDDED_MINION=false to leave it out)',
      );
    } catch (error) {
      // The server is useful without it; other minions can still register.
      logger.error({ err: error }, 'embedded minion could not start; serving without it');
      minion = undefined;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    database,
    processor,
    close() {
      closing ??= (async () => {
        logger.info('shutting down');
        // The embedded minion hands back what it runs: another minion (or the next start) retries it.
        await minion?.stop(0);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections would hold close() open.
          if ('closeIdleConnections' in server) server.closeIdleConnections();
        });
        await processor?.stop();
        await tower.close();
        await database.close();
        logger.info('stopped');
      })();
      return closing;
    },
  };
}

/** Octokit on the configured API URL, when a GitHub App is configured. */
function defaultGitHubPort(
  config: Config,
  clock: Clock,
  budget: GitHubBudget,
): GitHubPort | undefined {
  if (!config.githubApp) return undefined;
  return createOctokitPort({
    appId: config.githubApp.appId,
    privateKey: config.githubApp.privateKey,
    baseUrl: config.githubApiUrl,
    now: () => clock.now(),
    // Near the end of the primary rate limit, content requests wait for its reset.
    onRateLimit: ({ installationId, remaining, resetAt }) => {
      if (remaining < PRIMARY_RESERVE) void budget.block(installationId, resetAt).catch(() => {});
    },
  });
}

/** GitHub's clone URLs and installation tokens, when a GitHub App is configured. */
function defaultRepositoryAccess(config: Config, database: Database): RepositoryAccess | undefined {
  if (!config.githubApp) return undefined;
  const installations = createInstallationQueries(database.db);
  return createGitHubRepositoryAccess({
    appId: config.githubApp.appId,
    privateKey: config.githubApp.privateKey,
    baseUrl: config.githubApiUrl,
    locate: (repositoryId) => installations.getRepository(repositoryId),
  });
}

function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  hostname: string,
  port: number,
) {
  return new Promise<ServerType>((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once('error', reject);
  });
}

function formatHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
