/**
 * Tower's storage model. One table per aggregate; later issues
 * migrate it. Timestamps are `timestamptz`; GitHub ids are bigints.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type { GraphSpec, JobSpec } from '../lib/graph-spec.js';

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();
const ts = (name: string) => timestamp(name, { withTimezone: true });
const githubId = (name: string) => bigint(name, { mode: 'number' });

export const installations = pgTable('installations', {
  id: githubId('id').primaryKey(),
  accountLogin: text('account_login').notNull(),
  accountId: githubId('account_id').notNull(),
  accountType: text('account_type').notNull(),
  repositorySelection: text('repository_selection'),
  suspendedAt: ts('suspended_at'),
  /** Set when the app is uninstalled; rows stay so that history keeps its owner. */
  removedAt: ts('removed_at'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const repositories = pgTable(
  'repositories',
  {
    id: githubId('id').primaryKey(),
    installationId: githubId('installation_id')
      .notNull()
      .references(() => installations.id),
    fullName: text('full_name').notNull(),
    private: boolean('private').notNull().default(false),
    /** Set when the repository leaves the installation. */
    removedAt: ts('removed_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('repositories_installation_idx').on(t.installationId),
    index('repositories_full_name_idx').on(t.fullName),
  ],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    /** GitHub's `X-GitHub-Delivery`; a redelivery has the same id and is stored once. */
    id: text('id').primaryKey(),
    event: text('event').notNull(),
    action: text('action'),
    installationId: githubId('installation_id'),
    payload: jsonb('payload').notNull(),
    /** pending → processing → done | failed; a lapsed processing lease is taken again. */
    status: text('status', { enum: ['pending', 'processing', 'done', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** Not processed before this time: backoff after a failed attempt. */
    availableAt: ts('available_at').notNull().defaultNow(),
    leaseExpiresAt: ts('lease_expires_at'),
    receivedAt: ts('received_at').notNull().defaultNow(),
    processedAt: ts('processed_at'),
    lastError: text('last_error'),
    /** SHA-256 of the event name and the raw body: a replayed body with a new delivery id is stored once. */
    bodyHash: text('body_hash'),
  },
  (t) => [
    index('webhook_deliveries_pending_idx')
      .on(t.availableAt)
      .where(sql`${t.status} in ('pending', 'processing')`),
    uniqueIndex('webhook_deliveries_body_hash_idx').on(t.bodyHash),
  ],
);

export const events = pgTable(
  'events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    type: text('type', {
      enum: ['push', 'pull_request', 'land', 'cron', 'trigger', 'api'],
    }).notNull(),
    /** Two deliveries of one happening produce one event. */
    dedupKey: text('dedup_key').notNull(),
    sha: text('sha').notNull(),
    ref: text('ref'),
    author: text('author'),
    payload: jsonb('payload').notNull(),
    deliveryId: text('delivery_id').references(() => webhookDeliveries.id),
    /** A pull request's events: its number, so that a new push supersedes older graphs. */
    pullNumber: integer('pull_number'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('events_dedup_key_idx').on(t.dedupKey),
    index('events_pull_idx')
      .on(t.repositoryId, t.pullNumber)
      .where(sql`${t.pullNumber} is not null`),
  ],
);

export const graphs = pgTable(
  'graphs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    eventId: bigint('event_id', { mode: 'number' })
      .notNull()
      .references(() => events.id),
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    name: text('name').notNull(),
    sha: text('sha').notNull(),
    /**
     * The graph spec's format version and the spec as generated, without its
     * jobs: each job's spec is in `jobs.definition`, so that an event reads
     * only the jobs it reaches.
     */
    specVersion: integer('spec_version').notNull(),
    spec: jsonb('spec').$type<Omit<GraphSpec, 'jobs'>>().notNull(),
    trust: text('trust', { enum: ['trusted', 'untrusted'] })
      .notNull()
      .default('trusted'),
    /** Built for a protected branch: restricted minions take only such graphs' named jobs. */
    protectedBranch: boolean('protected_branch').notNull().default(false),
    state: text('state', { enum: ['running', 'done'] })
      .notNull()
      .default('running'),
    result: text('result'),
    supersededBy: bigint('superseded_by', { mode: 'number' }),
    /**
     * Counts the transactions that changed the graph's jobs (each locks the
     * graph row, so this costs no extra lock): check runs are published
     * when it moves past what they last showed.
     */
    changes: bigint('changes', { mode: 'number' }).notNull().default(0),
    createdAt: createdAt(),
    finishedAt: ts('finished_at'),
  },
  (t) => [
    index('graphs_repository_sha_idx').on(t.repositoryId, t.sha),
    // A redelivered event builds its graph once.
    uniqueIndex('graphs_event_name_idx').on(t.eventId, t.name),
  ],
);

/** Distinct minion tag sets; jobs queue by tag set, minions match per tag set. */
export const tagSets = pgTable('tag_sets', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /**
   * Sorted, comma-joined tags: the identity of the set. Jobs of untrusted
   * graphs queue apart, in a set keyed `untrusted:<tags>` with the same tags.
   */
  key: text('key').notNull().unique(),
  tags: text('tags').array().notNull(),
});

export const jobStates = ['inactive', 'blocked', 'pending', 'running', 'done'] as const;
export const runCauses = ['scheduled', 'auto-retry', 'retrigger'] as const;
export const jobResults = [
  'success',
  'warning',
  'failure',
  'exception',
  'cancelled',
  'skipped',
  'timed-out',
] as const;

export const jobs = pgTable(
  'jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    graphId: bigint('graph_id', { mode: 'number' })
      .notNull()
      .references(() => graphs.id),
    label: text('label').notNull(),
    kind: text('kind').notNull(),
    state: text('state', { enum: jobStates }).notNull(),
    result: text('result', { enum: jobResults }),
    reason: text('reason'),
    tagSetId: bigint('tag_set_id', { mode: 'number' }).references(() => tagSets.id),
    priority: smallint('priority').notNull().default(0),
    retries: smallint('retries').notNull().default(0),
    /** Automatic retries spent since the job was (re)opened. */
    retriesUsed: smallint('retries_used').notNull().default(0),
    /** Why the next run is created: the cause its run row records. */
    nextCause: text('next_cause', { enum: runCauses }).notNull().default('scheduled'),
    /** After an infrastructure failure: the minion the retry should preferably avoid. */
    avoidMinionId: bigint('avoid_minion_id', { mode: 'number' }).references(() => minions.id),
    /** The job's definition from the spec: command, timeouts, artifacts, environment. */
    definition: jsonb('definition').$type<JobSpec>().notNull(),
    /** When the job last became pending; claims take the oldest first. */
    pendingSince: ts('pending_since'),
    /** A pending job still pending at this time ends with its request timeout. */
    requestDeadline: ts('request_deadline'),
    /** A pending timer job fires at this time. */
    dueAt: ts('due_at'),
    /** A chunk materialised from a range job: the range job it belongs to. */
    parentJobId: bigint('parent_job_id', { mode: 'number' }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('jobs_graph_label_idx').on(t.graphId, t.label),
    // Pages of a graph's jobs in label order: the "C" collation orders as compareLabels does.
    index('jobs_graph_label_c_idx').on(t.graphId, sql`${t.label} collate "C"`),
    // The claim query: highest priority, oldest first, per tag set.
    index('jobs_claim_idx')
      .on(t.tagSetId, t.priority.desc(), t.pendingSince)
      .where(sql`${t.state} = 'pending'`),
    // Whether a graph still has open jobs, and its pending jobs.
    index('jobs_graph_state_idx').on(t.graphId, t.state),
    index('jobs_request_deadline_idx')
      .on(t.requestDeadline)
      .where(sql`${t.state} = 'pending'`),
    index('jobs_due_idx')
      .on(t.dueAt)
      .where(sql`${t.state} = 'pending'`),
    index('jobs_parent_idx')
      .on(t.parentJobId)
      .where(sql`${t.parentJobId} is not null`),
  ],
);

export const jobDependencies = pgTable(
  'job_dependencies',
  {
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id),
    dependsOnJobId: bigint('depends_on_job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id),
    /** The results of the upstream job that satisfy this edge. */
    condition: text('condition').array().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.jobId, t.dependsOnJobId] }),
    // Completing a job looks up its dependents.
    index('job_dependencies_upstream_idx').on(t.dependsOnJobId),
  ],
);

export const minions = pgTable('minions', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  name: text('name').notNull(),
  tags: text('tags').array().notNull(),
  trust: text('trust', { enum: ['trusted', 'untrusted', 'restricted'] })
    .notNull()
    .default('trusted'),
  /** The minion's credential, hashed; the secret itself is never stored. */
  credentialHash: text('credential_hash').notNull().unique(),
  /** Restricted minions: the job labels they accept (from protected branches only). */
  jobLabels: text('job_labels').array(),
  state: text('state', { enum: ['active', 'quarantined', 'retired'] })
    .notNull()
    .default('active'),
  consecutiveExceptions: integer('consecutive_exceptions').notNull().default(0),
  quarantinedAt: ts('quarantined_at'),
  registeredAt: ts('registered_at').notNull().defaultNow(),
  lastSeenAt: ts('last_seen_at'),
});

export const runs = pgTable(
  'runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id),
    attempt: integer('attempt').notNull(),
    cause: text('cause', { enum: runCauses }).notNull(),
    state: text('state', { enum: ['pending', 'running', 'done'] })
      .notNull()
      .default('pending'),
    result: text('result', { enum: jobResults }),
    reason: text('reason'),
    minionId: bigint('minion_id', { mode: 'number' }).references(() => minions.id),
    leaseExpiresAt: ts('lease_expires_at'),
    exitCode: integer('exit_code'),
    createdAt: createdAt(),
    startedAt: ts('started_at'),
    finishedAt: ts('finished_at'),
    /** The last log output; the idle timeout counts from it. */
    lastOutputAt: ts('last_output_at'),
    /** started_at + the job's max runtime, when it has one. */
    runtimeDeadline: ts('runtime_deadline'),
    /** The last output (or the start) + the job's idle timeout, when it has one. */
    idleDeadline: ts('idle_deadline'),
    /**
     * SHA-256 of the run's read token (`tmr_`): the job reads its graph's
     * manifests and artifacts with it while the run is running.
     */
    readTokenHash: text('read_token_hash'),
    /** Bytes of log stored for this run; appends past the per-run cap are refused. */
    logBytes: bigint('log_bytes', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    uniqueIndex('runs_job_attempt_idx').on(t.jobId, t.attempt),
    index('runs_lease_idx')
      .on(t.leaseExpiresAt)
      .where(sql`${t.state} = 'running'`),
    index('runs_runtime_deadline_idx')
      .on(t.runtimeDeadline)
      .where(sql`${t.state} = 'running'`),
    index('runs_idle_deadline_idx')
      .on(t.idleDeadline)
      .where(sql`${t.state} = 'running'`),
    // Whether a minion is busy: claims prefer a warm minion's jobs only while it is idle.
    index('runs_minion_running_idx')
      .on(t.minionId)
      .where(sql`${t.state} = 'running'`),
  ],
);

/** The minion that last ran a job of a repository successfully: claims prefer it (warm caches). */
export const warmMinions = pgTable(
  'warm_minions',
  {
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    label: text('label').notNull(),
    minionId: bigint('minion_id', { mode: 'number' })
      .notNull()
      .references(() => minions.id),
    updatedAt: updatedAt(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.label] })],
);

/** Approvals of breakpoint jobs: who let the graph go on, and when. */
export const jobApprovals = pgTable(
  'job_approvals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id),
    approver: text('approver').notNull(),
    approvedAt: ts('approved_at').notNull().defaultNow(),
  },
  (t) => [index('job_approvals_job_idx').on(t.jobId)],
);

export const logChunks = pgTable(
  'log_chunks',
  {
    runId: bigint('run_id', { mode: 'number' })
      .notNull()
      .references(() => runs.id),
    seq: integer('seq').notNull(),
    data: text('data').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] })],
);

export const artifacts = pgTable(
  'artifacts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: bigint('run_id', { mode: 'number' })
      .notNull()
      .references(() => runs.id),
    name: text('name').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    contentType: text('content_type').notNull(),
    storageKey: text('storage_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('artifacts_run_name_idx').on(t.runId, t.name)],
);

/**
 * A landing queue, per repository and base branch: the pure queue's state
 * (src/autoland/queue.ts) as one document, and what the runner keeps beside
 * it per batch (its staging branch, its event and graphs). Every change
 * locks the row.
 */
export const landingQueues = pgTable(
  'landing_queues',
  {
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    baseBranch: text('base_branch').notNull(),
    installationId: githubId('installation_id').notNull(),
    fullName: text('full_name').notNull(),
    state: jsonb('state').notNull(),
    runner: jsonb('runner').notNull().default({}),
    /** Whether something is queued or in flight: the runner looks only at active queues. */
    active: boolean('active').notNull().default(true),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ columns: [t.repositoryId, t.baseBranch] }),
    index('landing_queues_active_idx')
      .on(t.repositoryId)
      .where(sql`${t.active}`),
  ],
);

/**
 * A pull request in a landing queue, and what Tower last told about it:
 * its state for the queue API, and its `tower/land` check run.
 */
export const landingQueueEntries = pgTable(
  'landing_queue_entries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    baseBranch: text('base_branch').notNull(),
    pullNumber: integer('pull_number').notNull(),
    headSha: text('head_sha').notNull(),
    priority: smallint('priority').notNull().default(0),
    state: text('state', {
      enum: ['queued', 'testing', 'landed', 'failed', 'dequeued'],
    })
      .notNull()
      .default('queued'),
    reason: text('reason'),
    /** The landed commit, once landed. */
    landedSha: text('landed_sha'),
    enqueuedBy: text('enqueued_by').notNull(),
    enqueuedAt: ts('enqueued_at').notNull().defaultNow(),
    /** The `tower/land` check run, and a hash of what it last showed. */
    checkRunId: bigint('check_run_id', { mode: 'number' }),
    checkSha: text('check_sha'),
    checkHash: text('check_hash'),
    /** Changed since its check run was last published. */
    checkDirty: boolean('check_dirty').notNull().default(true),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('landing_queue_entries_pull_idx').on(t.repositoryId, t.pullNumber),
    index('landing_queue_entries_queue_idx').on(t.repositoryId, t.baseBranch, t.state),
    check('landing_queue_entries_pull_number_positive', sql`${t.pullNumber} > 0`),
  ],
);

export const clusters = pgTable('clusters', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  name: text('name').notNull().unique(),
  url: text('url').notNull(),
  /** Shared secret for HMAC-signed events between the two clusters. */
  sharedSecret: text('shared_secret').notNull(),
  createdAt: createdAt(),
});

/**
 * What Tower reports to GitHub for an event: a graph's check runs, or the
 * failing check run of definitions with errors. The publisher takes due
 * reports with a lease and publishes what changed (src/checks/publisher.ts).
 */
export const checkReports = pgTable(
  'check_reports',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    eventId: bigint('event_id', { mode: 'number' })
      .notNull()
      .references(() => events.id),
    /** Null for a report of definition errors (no graph was built). */
    graphId: bigint('graph_id', { mode: 'number' }).references(() => graphs.id),
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    installationId: githubId('installation_id').notNull(),
    headSha: text('head_sha').notNull(),
    /** Definition errors: the check run to show, rendered once. */
    staticCheckRun: jsonb('static_check_run'),
    /** The graph's `changes` that the check runs show; -1 before the first publish. */
    publishedChanges: bigint('published_changes', { mode: 'number' }).notNull().default(-1),
    /** Set once everything final is published: the report is left alone from then on. */
    finished: boolean('finished').notNull().default(false),
    /** Looked at again at this time even if nothing changed (a refresh, or annotations left to send). */
    dueAt: ts('due_at').notNull().defaultNow(),
    /** Not looked at before this time, changes or not: GitHub asked to wait, or a failure backs off. */
    holdUntil: ts('hold_until'),
    leaseExpiresAt: ts('lease_expires_at'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: createdAt(),
  },
  (t) => [
    index('check_reports_due_idx')
      .on(t.dueAt)
      .where(sql`not ${t.finished}`),
    uniqueIndex('check_reports_graph_idx').on(t.graphId),
    uniqueIndex('check_reports_definitions_idx')
      .on(t.eventId)
      .where(sql`${t.graphId} is null`),
  ],
);

/**
 * One GitHub check run Tower created, and what it last sent. A job that
 * runs again after its check run completed gets a new check run (a new
 * generation), as GitHub's Re-run does; the old one stays as history.
 */
export const checkRuns = pgTable(
  'check_runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    reportId: bigint('report_id', { mode: 'number' })
      .notNull()
      .references(() => checkReports.id),
    /** `summary`, `job:<id>`, `group:<name>` or `definitions` (src/checks/render.ts). */
    key: text('key').notNull(),
    generation: integer('generation').notNull().default(1),
    githubId: bigint('github_id', { mode: 'number' }),
    name: text('name').notNull(),
    /** A hash of the last payload sent: an update is sent only when it differs. */
    sentHash: text('sent_hash'),
    status: text('status', { enum: ['queued', 'in_progress', 'completed'] }),
    /** Annotations sent so far (GitHub takes 50 a request; the rest follow in updates). */
    annotationsSent: integer('annotations_sent').notNull().default(0),
    sentAt: ts('sent_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('check_runs_report_key_idx').on(t.reportId, t.key, t.generation),
    index('check_runs_github_idx').on(t.githubId),
  ],
);

/**
 * Content-creating requests sent to GitHub per installation, for the
 * budget of 80 a minute and 500 an hour that every replica shares.
 */
export const githubContentRequests = pgTable(
  'github_content_requests',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    installationId: githubId('installation_id').notNull(),
    at: ts('at').notNull(),
  },
  (t) => [index('github_content_requests_idx').on(t.installationId, t.at)],
);

/** Per installation: GitHub asked Tower to wait (retry-after, or a spent rate limit) until then. */
export const githubBudgets = pgTable('github_budgets', {
  installationId: githubId('installation_id').primaryKey(),
  blockedUntil: ts('blocked_until'),
  /** Refusals in a row that said no time to retry (a secondary limit): the back-off doubles with each. */
  refusals: integer('refusals').notNull().default(0),
});

/** `/tower ok-to-test` approvals: a fork's pull request may run at this head commit. */
export const okToTest = pgTable(
  'ok_to_test',
  {
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    pullNumber: integer('pull_number').notNull(),
    headSha: text('head_sha').notNull(),
    approvedBy: text('approved_by').notNull(),
    approvedAt: ts('approved_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.pullNumber, t.headSha] })],
);

/**
 * Each head commit a pull request had: when it arrived (GitHub's
 * `updated_at` of the pull_request event that brought it) and who pushed
 * it (the synchronize event's sender). Commands bind to the head their
 * writer saw; a fork's trust needs its pusher's permission too.
 */
export const pullRequestHeads = pgTable(
  'pull_request_heads',
  {
    repositoryId: githubId('repository_id')
      .notNull()
      .references(() => repositories.id),
    pullNumber: integer('pull_number').notNull(),
    headSha: text('head_sha').notNull(),
    arrivedAt: ts('arrived_at').notNull(),
    pushedBy: text('pushed_by'),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.pullNumber, t.headSha] })],
);

/**
 * Comments Tower posts (replies to commands, notices, notify jobs), queued
 * so that none is lost or posted twice: the publisher sends them within the
 * installation's budget. `dedupKey` makes enqueueing idempotent.
 */
export const outgoingComments = pgTable(
  'outgoing_comments',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    dedupKey: text('dedup_key').notNull().unique(),
    installationId: githubId('installation_id').notNull(),
    fullName: text('full_name').notNull(),
    issueNumber: integer('issue_number').notNull(),
    body: text('body').notNull(),
    githubId: bigint('github_id', { mode: 'number' }),
    dueAt: ts('due_at').notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    leaseExpiresAt: ts('lease_expires_at'),
    lastError: text('last_error'),
    sentAt: ts('sent_at'),
    createdAt: createdAt(),
  },
  (t) => [
    index('outgoing_comments_due_idx')
      .on(t.dueAt)
      .where(sql`${t.sentAt} is null`),
  ],
);

/** Comments whose commands Tower has carried out: a redelivered comment runs nothing twice. */
export const handledComments = pgTable('handled_comments', {
  commentId: githubId('comment_id').primaryKey(),
  handledAt: ts('handled_at').notNull().defaultNow(),
});

/**
 * API tokens for machines (`tower tokens create`): the secret is shown once
 * and only its SHA-256 is kept. An operator token reads everything, the
 * minion inventory and /metrics included; any other token reads the
 * repositories it names (and what is public).
 */
export const apiTokens = pgTable('api_tokens', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  operator: boolean('operator').notNull().default(false),
  /** The repositories a non-operator token reads; null for an operator token. */
  repositoryIds: bigint('repository_ids', { mode: 'number' }).array(),
  createdAt: createdAt(),
  lastUsedAt: ts('last_used_at'),
  revokedAt: ts('revoked_at'),
});

/**
 * One row: when a maintenance pass (of any replica) last reached the
 * database, and since when passes have reached it without a break, both in
 * the database's time. Lapsed leases end only a grace after `up_since`, so
 * that minions cut off by an outage can heartbeat first
 * (src/minions/maintenance.ts).
 */
export const leaseWatch = pgTable(
  'lease_watch',
  {
    id: smallint('id').primaryKey().default(1),
    seenAt: ts('seen_at').notNull(),
    upSince: ts('up_since').notNull(),
  },
  (t) => [check('lease_watch_one_row', sql`${t.id} = 1`)],
);
