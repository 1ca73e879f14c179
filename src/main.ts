/**
 * The composition root: builds Tower from its configuration and starts it.
 * Nothing imports this file but the command line and the tests.
 */
import type { AddressInfo } from 'node:net';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import { Probot } from 'probot';
import { createAccess, type Access } from './access/access.js';
import { createApiTokens } from './access/api-tokens.js';
import { createGitHubUserClient } from './access/github-user.js';
import { createSealer, sessionSecret } from './access/sessions.js';
import type { Config } from './config/config.js';
import { createAccessQueries } from './db/access.js';
import { openDatabase, type Database } from './db/connection.js';
import { createCheckReportQueries } from './db/check-reports.js';
import { createDeliveryQueries } from './db/deliveries.js';
import { createEventQueries } from './db/events.js';
import { createPullRequestHeadQueries } from './db/pull-request-heads.js';
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
import { MinionUnauthorizedError } from './minions/errors.js';
import { errorMessage } from './lib/errors.js';
import { createMaintenance, type Maintenance } from './minions/maintenance.js';
import { createInProcessNotifier, createPostgresNotifier } from './minions/notifier.js';
import { createMinionAgent, hostTags, type MinionAgent } from './minions/agent.js';
import { checkIsolation, IsolationError, type Isolation } from './minions/isolation.js';
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

/** How long shutdown waits for requests in flight before it closes their connections. */
const SHUTDOWN_GRACE_MS = 5000;

/** Requests of the primary rate limit kept for reading (.tower/, permissions) when it runs low. */
const PRIMARY_RESERVE = 200;

/** A static report's check run, as the publisher rendered and stored it. */
type DesiredStatic = DesiredCheckRun | null;

export type TowerDeps = {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** Where lease times come from; by default the database's clock. Tests that move time by hand pass theirs. */
  leaseClock?: Clock;
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
  /** Per-client limits; by default 64 open claims per minion and 16 log followers per client. */
  limits?: { maxClaimsPerMinion?: number; maxFollowersPerClient?: number };
};

export type RunningTower = {
  url: string;
  database: Database;
  /** Processes stored deliveries now (tests); absent without a GitHub App. */
  processor: DeliveryProcessor | undefined;
  /** Stop accepting, finish in-flight work, close the database. */
  close(): Promise<void>;
};

/** Who may see what: sessions (when sign-in is configured), API tokens, minion credentials. */
async function createAccessFor(
  config: Config,
  database: Database,
  clock: Clock,
  authenticateMinion: (credential: string) => Promise<{ id: number }>,
): Promise<Access> {
  const queries = createAccessQueries(database.db);
  const { signIn } = config;
  return createAccess({
    queries,
    tokens: createApiTokens({ queries, clock }),
    authenticateMinion: async (credential) => {
      try {
        return (await authenticateMinion(credential)).id;
      } catch (error) {
        if (error instanceof MinionUnauthorizedError) return undefined;
        throw error;
      }
    },
    signIn: signIn && {
      github: createGitHubUserClient({
        ...signIn,
        apiUrl: config.githubApiUrl,
        callbackUrl: `${config.publicUrl}/login/callback`,
      }),
      sealer: createSealer(await sessionSecret(config.sessionSecret, config.dataDir), clock),
    },
    clock,
  });
}

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
  /**
   * The first step of shutting down: stops the maintenance loop (no lease
   * lapses while the server goes away under its minions), then ends log
   * followers and waiting claims at once; new claims get 503.
   */
  beginShutdown(): Promise<void>;
  /** Stops the maintenance loop, the server-side passes and the notifier; the database stays open. */
  close(): Promise<void>;
};

/** Builds Tower on an open, migrated database, without listening. */
export async function createTower({
  config,
  logger,
  clock = systemClock,
  leaseClock,
  database,
  artifacts = createFileArtifactStore(artifactsDirectory(config.dataDir)),
  maintenanceIntervalMs,
  notify,
  repositories = defaultRepositoryAccess(config, database),
  github: givenGitHub,
  contentLimits,
  limits = {},
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
      allowHosts: config.notifyAllowHosts,
      secret: config.notifySecret,
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
    leaseClock,
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
  // Aborted as shutdown begins: log followers and waiting claims end at once.
  const shutdown = new AbortController();
  const minions = createMinionProtocol({
    db: database.db,
    scheduler,
    clock,
    notifier,
    artifacts,
    runSignals,
    registrationTokens: config.minionTokens ?? {},
    publicUrl: config.publicUrl,
    ...(config.leaseSeconds === undefined ? {} : { leaseSeconds: config.leaseSeconds }),
    ...(config.logMaxBytes === undefined ? {} : { logMaxBytes: config.logMaxBytes }),
    shutdown: shutdown.signal,
    ...(limits.maxClaimsPerMinion === undefined
      ? {}
      : { maxClaimsPerMinion: limits.maxClaimsPerMinion }),
    repositories,
    logger,
  });
  const reads = createReads({
    db: database.db,
    scheduler,
    artifacts,
    runSignals,
    publicUrl: config.publicUrl,
    shutdown: shutdown.signal,
    ...(limits.maxFollowersPerClient === undefined
      ? {}
      : { maxFollowersPerClient: limits.maxFollowersPerClient }),
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
    ...(config.leaseSeconds === undefined ? {} : { leaseSeconds: config.leaseSeconds }),
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
        heads: createPullRequestHeadQueries(database.db),
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
  if (Object.keys(config.minionTokens ?? {}).length === 0) {
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
    access: await createAccessFor(config, database, clock, (credential) =>
      minions.authenticate(credential),
    ),
    publicUrl: config.publicUrl,
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
    async beginShutdown() {
      await maintenance.stop();
      shutdown.abort();
    },
    async close() {
      await maintenance.stop();
      shutdown.abort();
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
    try {
      minion = await startEmbeddedMinion(config, config.embeddedMinion, url, tower, logger);
    } catch (error) {
      // The server is useful without it; other minions can still register.
      logger.error({ err: error }, 'embedded minion could not start; serving without it');
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
        await tower.beginShutdown();
        // The embedded minion hands back what it runs: another minion (or the next start) retries it.
        await minion?.stop(0);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections would hold close() open.
          if ('closeIdleConnections' in server) server.closeIdleConnections();
          // A reader that stopped reading (an artifact download, say) is not waited for long.
          setTimeout(() => {
            if ('closeAllConnections' in server) server.closeAllConnections();
          }, SHUTDOWN_GRACE_MS).unref();
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

/**
 * The minion `tower serve` runs itself. Its jobs run as users of their own
 * (src/minions/isolation.ts); only the demo, on a machine where that cannot
 * be (not root, say), falls back to running them as the server's user.
 */
async function startEmbeddedMinion(
  config: Config,
  embedded: NonNullable<Config['embeddedMinion']>,
  url: string,
  tower: Tower,
  logger: Logger,
): Promise<MinionAgent> {
  const tags = embedded.tags ?? hostTags();
  const workdir = join(config.dataDir, 'minion');
  let isolation: Isolation = embedded.isolation === 'none' ? { kind: 'none' } : { kind: 'user' };
  if (embedded.isolation === undefined) {
    await mkdir(workdir, { recursive: true });
    try {
      await checkIsolation(isolation, embedded.concurrency, workdir);
    } catch (error) {
      logger.warn(
        { problem: errorMessage(error) },
        "demo: the embedded minion runs jobs as the server's own user, without isolation",
      );
      isolation = { kind: 'none' };
    }
  }
  if (isolation.kind === 'user') {
    // A job must not find the server's secrets on disk either.
    await refuseReadableSecrets(join(process.cwd(), '.env'));
    const artifacts = artifactsDirectory(config.dataDir);
    await mkdir(artifacts, { recursive: true, mode: 0o700 });
    await chmod(artifacts, 0o700);
  }
  const minion = createMinionAgent({
    server: url,
    workdir,
    name: 'embedded',
    register: () => tower.registerEmbeddedMinion(tags),
    concurrency: embedded.concurrency,
    logger: logger.child({ component: 'minion' }),
    isolation,
  });
  await minion.start();
  logger.info(
    { tags, isolation: isolation.kind },
    'embedded minion started (TOWER_EMBEDDED_MINION=false to leave it out)',
  );
  return minion;
}

/** Jobs of the embedded minion run as other users: a file of secrets must not be theirs to read. */
async function refuseReadableSecrets(path: string): Promise<void> {
  const mode = await stat(path).then(
    (info) => info.mode,
    () => undefined,
  );
  if (mode !== undefined && (mode & 0o004) !== 0) {
    throw new IsolationError(
      `${path} is readable by every user, so jobs could read the secrets in it: chmod 600 ${path}`,
    );
  }
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
