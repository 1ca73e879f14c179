/**
 * Tower's storage model. One table per aggregate of DESIGN.md; later issues
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
  },
  (t) => [
    index('webhook_deliveries_pending_idx')
      .on(t.availableAt)
      .where(sql`${t.status} in ('pending', 'processing')`),
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
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('events_dedup_key_idx').on(t.dedupKey)],
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
    enqueuedBy: text('enqueued_by').notNull(),
    enqueuedAt: ts('enqueued_at').notNull().defaultNow(),
    updatedAt: updatedAt(),
  },
  (t) => [
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
