/**
 * The minion protocol v1 as domain functions (docs/api.md): register, claim
 * (long-poll), heartbeat, logs, artifacts, report. src/web/minion-api.ts
 * parses requests and calls these; every refusal is a typed error.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { TowerDb } from '../db/connection.js';
import { createMinionQueries, type MinionRow } from '../db/minions.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { JobSpec } from '../lib/graph-spec.js';
import { createSlots } from '../lib/slots.js';
import {
  acceptsTagSet,
  InactiveMinionError,
  type Claim,
  type Scheduler,
} from '../scheduler/scheduler.js';
import type { ArtifactStore } from './artifact-store.js';
import {
  CREDENTIAL_PREFIX,
  credentialHash,
  newCredential,
  newRunReadSecret,
  runReadToken,
  sameSecret,
} from './credentials.js';
import {
  InvalidRequestError,
  MinionForbiddenError,
  MinionQuarantinedError,
  MinionUnauthorizedError,
  PayloadTooLargeError,
  RegistrationDisabledError,
  RegistrationForbiddenError,
  RunConflictError,
  ShuttingDownError,
  TooManyRequestsError,
} from './errors.js';
import { mergeClaimable, type Claimable, type Notifier } from './notifier.js';
import type { RunSignals } from './run-signals.js';
import {
  ArtifactName,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_LOG_MAX_BYTES,
  LOG_NOTE_ROOM_BYTES,
  MAX_ARTIFACT_BYTES,
  isLogTruncatedNote,
  describeIssues,
  minionTrusts,
  type ClaimRequest,
  type MinionTrust,
  type HeartbeatRequest,
  type LogChunk,
  type RegisterRequest,
  type ReportRequest,
} from './schemas.js';
import { createUrls, type ArtifactEntry } from './urls.js';

export type Minion = Pick<MinionRow, 'id' | 'name' | 'tags' | 'trust'> & {
  /** Absent means active; a quarantined minion may finish its runs but not claim. */
  state?: MinionRow['state'];
};

export type ClaimedRun = {
  runId: number;
  jobId: number;
  graphId: number;
  label: string;
  attempt: number;
  cause: Claim['cause'];
  leaseSeconds: number;
  job: JobSpec;
  sha: string;
  repositoryId: number;
  /** Where to fetch the repository, with a short-lived token; null when Tower has no way. */
  checkout: { url: string; token: string | null; expiresAt: Date | null } | null;
  upstream: { label: string; runId: number; manifestUrl: string }[];
  /**
   * The job's read token (`tmr_`): while the run is running it reads the
   * graph's manifests and artifacts, a private repository's too. It is the
   * job's, unlike the minion's credential; stored only as a hash.
   */
  readToken: string;
};

/**
 * How a minion reaches a repository: its clone URL and a short-lived token
 * (src/github/repository-access.ts asks GitHub for an installation token).
 */
export type RepositoryAccess = {
  checkoutSource(
    repositoryId: number,
  ): Promise<{ url: string; token: string | null; expiresAt: Date | null } | undefined>;
};

export type MinionProtocolDeps = {
  db: TowerDb;
  /** With wake-ups (its onClaimable notifies), so that a report wakes the claims downstream jobs wait for. */
  scheduler: Scheduler;
  clock: Clock;
  notifier: Notifier;
  artifacts: ArtifactStore;
  runSignals: RunSignals;
  /**
   * The registration tokens, one per trust level it grants
   * (TOWER_MINION_TOKEN, TOWER_MINION_TOKEN_UNTRUSTED, TOWER_MINION_TOKEN_RESTRICTED);
   * registration is refused without any.
   */
  registrationTokens: RegistrationTokens;
  publicUrl: string;
  leaseSeconds?: number;
  /** The most log a run stores, in bytes (TOWER_LOG_MAX_BYTES); 64 MiB by default. */
  logMaxBytes?: number;
  /** Claims one minion may have open at once; 64 by default, the most jobs an agent runs at once. */
  maxClaimsPerMinion?: number;
  /** Aborted when Tower shuts down: waiting claims end at once and new ones are refused. */
  shutdown?: AbortSignal;
  /** Absent without a GitHub App: claims then carry no checkout. */
  repositories?: RepositoryAccess | undefined;
  logger?: Logger;
};

/** A registration token per trust level it grants; unset levels cannot be registered. */
export type RegistrationTokens = Partial<Record<MinionTrust, string>>;

/** The setting that holds the registration token of a trust level. */
export function tokenVariable(trust: MinionTrust): string {
  return trust === 'trusted' ? 'TOWER_MINION_TOKEN' : `TOWER_MINION_TOKEN_${trust.toUpperCase()}`;
}

/** An agent runs at most 64 jobs at once, each slot with one claim open. */
const DEFAULT_MAX_CLAIMS_PER_MINION = 64;
/** What a refused claim's `retry-after` says: a claim usually ends within a wait of 20 s. */
const CLAIM_RETRY_AFTER_SECONDS = 5;

/** A retired minion's credential is revoked: the minion must register again to work. */
const revoked = (minionId: number) =>
  new MinionUnauthorizedError(
    `Minion ${minionId} is retired (\`tower minions retire\`): its credential is revoked; ` +
      'register the machine again for a new one',
  );

export function createMinionProtocol(deps: MinionProtocolDeps) {
  const queries = createMinionQueries(deps.db);
  const urls = createUrls(deps.publicUrl);
  const leaseSeconds = deps.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  const logMaxBytes = deps.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
  const maxClaims = deps.maxClaimsPerMinion ?? DEFAULT_MAX_CLAIMS_PER_MINION;
  const claimSlots = createSlots(maxClaims);

  /** Throws unless the run is running on this minion: logs and artifacts are taken only then. */
  async function requireRunning(minion: Minion, runId: number, what: string) {
    if (!(await queries.isRunningOn(runId, minion.id))) {
      throw new RunConflictError(
        'conflict',
        runId,
        `Run ${runId} is not running on minion ${minion.id}; its ${what} is refused`,
      );
    }
  }

  async function describeClaim(claim: Claim, readToken: string): Promise<ClaimedRun> {
    // The claim carries the commit and repository; a job without dependencies has no upstream.
    const detail = { sha: claim.sha, repositoryId: claim.repositoryId };
    const upstream =
      claim.job.dependencies.length === 0 ? [] : await queries.upstreamRuns(claim.jobId);
    let checkout: ClaimedRun['checkout'] = null;
    try {
      checkout = (await deps.repositories?.checkoutSource(detail.repositoryId)) ?? null;
    } catch (error) {
      // The run is claimed already: the minion reports it as an exception with this cause.
      deps.logger?.error(
        { err: error, repositoryId: detail.repositoryId, runId: claim.runId },
        'no checkout source for a claimed run',
      );
    }
    return {
      runId: claim.runId,
      jobId: claim.jobId,
      graphId: claim.graphId,
      label: claim.label,
      attempt: claim.attempt,
      cause: claim.cause,
      leaseSeconds,
      job: claim.job,
      sha: detail.sha,
      repositoryId: detail.repositoryId,
      checkout,
      upstream: upstream.map((up) => ({ ...up, manifestUrl: urls.manifest(up.runId) })),
      readToken,
    };
  }

  /**
   * The trust the token grants; throws unless registration is enabled and
   * the token is one of the registration tokens. The server decides trust:
   * a minion never has more than its token carries.
   */
  function authorizeRegistration(token: string | undefined): MinionTrust {
    const configured = minionTrusts.filter((trust) => deps.registrationTokens[trust] !== undefined);
    if (configured.length === 0) {
      throw new RegistrationDisabledError(
        'Minion registration is disabled on this Tower: set TOWER_MINION_TOKEN (or TOWER_MINION_TOKEN_UNTRUSTED, TOWER_MINION_TOKEN_RESTRICTED) to a registration token',
      );
    }
    // Every token is compared, in constant time, so the answer's timing tells nothing.
    const granted = configured.filter((trust) =>
      sameSecret(token ?? '', deps.registrationTokens[trust]!),
    );
    if (token === undefined || granted.length === 0) {
      throw new MinionUnauthorizedError(
        `Registration needs Authorization: Bearer <registration token>, the value of one of ${configured.map(tokenVariable).join(', ')}`,
      );
    }
    return granted[0]!;
  }

  /**
   * Stores a new minion with a new credential; only the credential's hash is
   * kept. `granted` is what its registration token allows: asking for more
   * is refused, asking for nothing gets it all.
   */
  async function enrol(
    request: RegisterRequest,
    granted: MinionTrust,
  ): Promise<{ minionId: number; credential: string }> {
    const trust = request.trust ?? granted;
    if (minionTrusts.indexOf(trust) > minionTrusts.indexOf(granted)) {
      throw new RegistrationForbiddenError(
        `This registration token grants ${granted} minions; a ${trust} minion needs the token of ${tokenVariable(trust)}`,
      );
    }
    if (trust === 'restricted' && (request.jobs ?? []).length === 0) {
      throw new InvalidRequestError(
        'jobs: must list at least one job label: a restricted minion takes only the jobs it names',
      );
    }
    if (trust !== 'restricted' && request.jobs !== undefined) {
      throw new InvalidRequestError(
        `jobs: is only for restricted minions (trust: restricted); a ${trust} minion takes any job its tags allow`,
      );
    }
    const credential = newCredential();
    const minionId = await queries.insertMinion({
      name: request.name,
      tags: [...new Set(request.tags)].sort(),
      trust,
      jobLabels: request.jobs ? [...new Set(request.jobs)].sort() : null,
      credentialHash: credentialHash(credential),
      now: deps.clock.now(),
    });
    return { minionId, credential };
  }

  /**
   * The claim itself: at once, or waiting for wake-ups until the deadline or
   * until `signal` aborts (the minion hung up, or Tower shuts down).
   */
  async function claimOrWait(
    minion: Minion,
    request: ClaimRequest,
    signal: AbortSignal,
  ): Promise<ClaimedRun | undefined> {
    const attempt = async () => {
      let claim: Claim | undefined;
      const readSecret = newRunReadSecret();
      try {
        claim = await deps.scheduler.claim({
          minionId: minion.id,
          leaseMs: leaseSeconds * 1000,
          readTokenHash: credentialHash(readSecret),
        });
      } catch (error) {
        // Quarantined (or retired) since it authenticated, perhaps while it waited.
        if (!(error instanceof InactiveMinionError)) throw error;
        if (error.state === 'quarantined') throw new MinionQuarantinedError(minion.id);
        if (error.state === 'retired') throw revoked(minion.id);
        throw new MinionForbiddenError(minion.id, error.state ?? 'unknown');
      }
      return claim && describeClaim(claim, runReadToken(claim.runId, readSecret));
    };
    if (request.waitSeconds === 0) return attempt();

    const deadline = Date.now() + request.waitSeconds * 1000;
    /** Wake-ups heard and not yet tried. */
    let wokenFor: Claimable | undefined;
    /** Wake-ups the attempt in progress answers. */
    let inHand: Claimable | undefined;
    let wake: (() => void) | undefined;
    // Subscribed before the first attempt: a job made claimable during it still wakes us.
    // Only jobs of tag sets this minion may take wake it.
    const subscription = await deps.notifier.subscribe(
      (claimable) => {
        wokenFor = mergeClaimable(wokenFor, claimable);
        wake?.();
      },
      {
        accepts: (tagSetKey) => acceptsTagSet(minion, tagSetKey),
        picky: minion.trust === 'restricted',
      },
    );
    try {
      for (;;) {
        inHand = wokenFor;
        wokenFor = undefined;
        const claimed = await attempt();
        if (claimed) return claimed;
        // Nothing for a minion that may take any job of its sets: nothing is left to pass on.
        inHand = undefined;
        const remaining = deadline - Date.now();
        // A steady stream of notifications for other tag sets still ends at the deadline.
        if (remaining <= 0 || signal.aborted) return undefined;
        if (wokenFor) continue;
        subscription.ready();
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, remaining);
          signal.addEventListener('abort', done);
          wake = done;
        });
        if (!wokenFor) return undefined;
      }
    } finally {
      // After a job taken (more may wait), or a wake-up left unused: other waiters try.
      const left = mergeClaimable(inHand, wokenFor);
      if (left !== undefined && left !== 'all') subscription.pass(left);
      subscription.close();
    }
  }

  return {
    authorizeRegistration,

    /** A new minion with a new credential; names are labels, so a name may repeat. */
    async register(
      token: string | undefined,
      request: RegisterRequest,
    ): Promise<{ minionId: number; credential: string }> {
      return enrol(request, authorizeRegistration(token));
    },

    /** The minion `tower serve` runs itself registers in-process, without a token, as trusted. */
    registerEmbedded(request: RegisterRequest): Promise<{ minionId: number; credential: string }> {
      return enrol(request, 'trusted');
    },

    /** The minion holding the credential, marked as seen. */
    async authenticate(token: string | undefined): Promise<Minion> {
      if (token === undefined) {
        throw new MinionUnauthorizedError('Missing Authorization: Bearer <minion credential>');
      }
      const row = token.startsWith(CREDENTIAL_PREFIX)
        ? await queries.touchMinionByCredential(credentialHash(token), deps.clock.now())
        : undefined;
      if (!row) throw new MinionUnauthorizedError('Unknown minion credential');
      // A quarantined minion still finishes its runs; only its claims are refused.
      if (row.state === 'retired') throw revoked(row.id);
      return { id: row.id, name: row.name, tags: row.tags, trust: row.trust, state: row.state };
    },

    /**
     * The best job for the minion now, or the first that becomes claimable
     * within `waitSeconds`; undefined when none does (or `signal` aborts).
     * The wait is wall-clock time and sleeps until a notification: each one
     * costs a waiter one more claim attempt, never a loop. A minion that
     * hangs up after its claim succeeded loses the run with its lease. A
     * minion has at most `maxClaimsPerMinion` claims open at once (429 past
     * it); once Tower shuts down, waiting claims end and new ones get 503.
     */
    async claim(
      minion: Minion,
      request: ClaimRequest,
      signal?: AbortSignal,
    ): Promise<ClaimedRun | undefined> {
      if (deps.shutdown?.aborted) {
        throw new ShuttingDownError('Tower is shutting down: claim again in a few seconds');
      }
      if (minion.state === 'quarantined') throw new MinionQuarantinedError(minion.id);
      const release = claimSlots.take(String(minion.id));
      if (!release) {
        throw new TooManyRequestsError(
          `Minion ${minion.id} has ${maxClaims} claims open already, the most one minion may ` +
            'have at once (one per job it runs at a time): wait for one to end before claiming again',
          CLAIM_RETRY_AFTER_SECONDS,
        );
      }
      // Ends with the request, or at once when Tower shuts down.
      const stop = new AbortController();
      const abort = () => stop.abort();
      signal?.addEventListener('abort', abort);
      deps.shutdown?.addEventListener('abort', abort);
      if (signal?.aborted) stop.abort();
      try {
        return await claimOrWait(minion, request, stop.signal);
      } finally {
        signal?.removeEventListener('abort', abort);
        deps.shutdown?.removeEventListener('abort', abort);
        release();
      }
    },

    async heartbeat(
      minion: Minion,
      runId: number,
      request: HeartbeatRequest,
    ): Promise<{ leaseExpiresAt: Date }> {
      const leaseMs = request.leaseSeconds * 1000;
      const outcome = await deps.scheduler.heartbeat({ runId, minionId: minion.id, leaseMs });
      if (outcome === 'stop') {
        throw new RunConflictError(
          'stop',
          runId,
          `Stop run ${runId}: it is not running on minion ${minion.id} any more`,
        );
      }
      // In the database's time, as the lease is kept.
      return outcome;
    },

    /**
     * Stores a chunk once per sequence number, counted toward the run's log
     * cap; the idle timeout counts from now. A chunk that would pass the cap
     * is refused (413), and the last LOG_NOTE_ROOM_BYTES below it are kept
     * for the minion's note that the log was cut short.
     */
    async appendLog(minion: Minion, runId: number, chunk: LogChunk): Promise<void> {
      const notRunning = () =>
        new RunConflictError(
          'conflict',
          runId,
          `Run ${runId} is not running on minion ${minion.id}; its log is refused`,
        );
      const outcome = await deps.scheduler.touchOutput({ runId, minionId: minion.id });
      if (outcome === 'stop') throw notRunning();
      const bytes = Buffer.byteLength(chunk.data, 'utf8');
      const stored = await queries.appendLogChunk({
        runId,
        minionId: minion.id,
        seq: chunk.seq,
        data: chunk.data,
        bytes,
        limit: isLogTruncatedNote(chunk.data) ? logMaxBytes : logMaxBytes - LOG_NOTE_ROOM_BYTES,
        now: deps.clock.now(),
      });
      if (stored === 'not-running') throw notRunning();
      if (stored === 'full') {
        throw new PayloadTooLargeError(
          `Run ${runId}'s log is full: a run stores at most ${logMaxBytes} bytes of log ` +
            `(TOWER_LOG_MAX_BYTES), and this chunk of ${bytes} bytes would pass that; ` +
            'stop sending the log and end it with the note that it was truncated',
        );
      }
      if (stored === 'stored') deps.runSignals.emit(runId);
    },

    /** Streams the bytes to the store, at most 100 MiB, and records the artifact. */
    async putArtifact(
      minion: Minion,
      runId: number,
      upload: {
        name: string;
        contentType: string | undefined;
        /** The Content-Length header, when there is one: a large body is refused before it is read. */
        declaredLength: number | undefined;
        body: ReadableStream<Uint8Array> | null;
      },
    ): Promise<ArtifactEntry> {
      const parsed = ArtifactName.safeParse(upload.name);
      if (!parsed.success)
        throw new InvalidRequestError(describeIssues(parsed.error.issues, 'name'));
      const name = parsed.data;
      const tooLarge = () =>
        new PayloadTooLargeError(
          `Artifact ${name} is larger than ${MAX_ARTIFACT_BYTES} bytes (100 MiB)`,
        );
      if (upload.declaredLength !== undefined && upload.declaredLength > MAX_ARTIFACT_BYTES) {
        throw tooLarge();
      }
      const contentType = upload.contentType?.trim() || 'application/octet-stream';
      if (contentType.length > 255) {
        throw new InvalidRequestError('content-type: must be at most 255 characters');
      }
      await requireRunning(minion, runId, 'artifact');
      let received = 0;
      const limit = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          received += chunk.byteLength;
          if (received > MAX_ARTIFACT_BYTES) controller.error(tooLarge());
          else controller.enqueue(chunk);
        },
      });
      const body = (upload.body ?? new Blob([]).stream()).pipeThrough(limit);
      // A key per upload: bytes that arrive too late never replace the bytes a manifest lists.
      const storageKey = `runs/${runId}/${createHash('sha256').update(name).digest('hex')}.${randomUUID()}`;
      const stored = await deps.artifacts.put(storageKey, body);
      // The upload took time: the run must still be this minion's, checked as it is recorded.
      const recorded = await queries
        .recordArtifact({
          runId,
          minionId: minion.id,
          name,
          size: stored.size,
          sha256: stored.sha256,
          contentType,
          storageKey,
          now: deps.clock.now(),
        })
        .catch(async (error: unknown) => {
          await deps.artifacts.delete(storageKey);
          throw error;
        });
      if (recorded.outcome === 'not-running') {
        await deps.artifacts.delete(storageKey);
        throw new RunConflictError(
          'conflict',
          runId,
          `Run ${runId} is not running on minion ${minion.id} any more (it has reported, or was ` +
            `taken from it): its artifacts are frozen, and ${name} is refused`,
        );
      }
      if (recorded.replaced !== undefined) await deps.artifacts.delete(recorded.replaced);
      return {
        name,
        size: stored.size,
        sha256: stored.sha256,
        contentType,
        url: urls.artifact(runId, name),
      };
    },

    /** Ends the run with the minion's result; the graph moves on, waiting claims wake. */
    async report(
      minion: Minion,
      runId: number,
      request: ReportRequest,
    ): Promise<{ manifestUrl: string }> {
      const outcome = await deps.scheduler.finishRun({
        runId,
        minionId: minion.id,
        result: request.result,
        reason: request.reason ?? null,
        exitCode: request.exitCode ?? null,
      });
      if (outcome === 'refused') {
        throw new RunConflictError(
          'conflict',
          runId,
          `Run ${runId} is not running on minion ${minion.id}; its report is refused`,
        );
      }
      deps.runSignals.emit(runId);
      return { manifestUrl: urls.manifest(runId) };
    },
  };
}

export type MinionProtocol = ReturnType<typeof createMinionProtocol>;
