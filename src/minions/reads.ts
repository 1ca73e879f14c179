/**
 * What the read API shows (docs/api.md): graphs, runs, artifact manifests,
 * artifacts, logs (also followed as they grow), minions and the queue.
 */
import type { TowerDb } from '../db/connection.js';
import { createMinionQueries, type MinionRow, type RunDetail } from '../db/minions.js';
import type { JobResult } from '../lib/graph-spec.js';
import type { GraphPage, Scheduler } from '../scheduler/scheduler.js';
import type { ArtifactStore } from './artifact-store.js';
import { createSlots } from '../lib/slots.js';
import { NotFoundError, ShuttingDownError, TooManyRequestsError } from './errors.js';
import type { RunSignals } from './run-signals.js';
import { createUrls, type ArtifactEntry } from './urls.js';

/** The artifact manifest of a run, format version 1. */
export type ArtifactManifest = {
  version: 1;
  runId: number;
  jobId: number;
  label: string;
  /** null while the run has not ended. */
  result: JobResult | null;
  artifacts: ArtifactEntry[];
};

export type RunView = RunDetail & { manifestUrl: string; logUrl: string };

export type MinionView = {
  id: number;
  name: string;
  tags: string[];
  trust: string;
  /** Restricted minions: the job labels they take; null otherwise. */
  jobs: string[] | null;
  state: string;
  /** When it was quarantined; null unless it is. */
  quarantinedAt: Date | null;
  registeredAt: Date;
  lastSeenAt: Date | null;
};

/** Items in a page of a graph's jobs or of the minions, unless the reader asks for another number. */
export const DEFAULT_GRAPH_PAGE = 1000;
export const DEFAULT_MINION_PAGE = 1000;
/** The most a reader may ask for in one page. */
export const MAX_PAGE = 5000;

export type GraphPageRequest = { after?: string | undefined; limit?: number | undefined };

function minionView(row: MinionRow): MinionView {
  return {
    id: row.id,
    name: row.name,
    tags: row.tags,
    trust: row.trust,
    jobs: row.jobLabels,
    state: row.state,
    quarantinedAt: row.quarantinedAt,
    registeredAt: row.registeredAt,
    lastSeenAt: row.lastSeenAt,
  };
}

/**
 * Chunks read per query when a log is served: at most 2 MiB (a chunk holds
 * at most 1 MiB), so a reader never holds a whole log in memory.
 */
export const LOG_PAGE_CHUNKS = 2;
/** Log followers one client may have open at once, unless told otherwise. */
export const DEFAULT_MAX_FOLLOWERS_PER_CLIENT = 16;
/**
 * How soon a follower looks for output that another replica took (this
 * replica's output wakes it at once): after 1 s, doubling while nothing
 * comes, up to 16 s.
 */
const FOLLOW_POLL_MS = 1000;
const FOLLOW_POLL_MAX_MS = 16_000;
/** What a refused follower's `retry-after` says. */
const FOLLOW_RETRY_AFTER_SECONDS = 10;

export function createReads(deps: {
  db: TowerDb;
  scheduler: Pick<Scheduler, 'graphPage' | 'jobStatus'>;
  artifacts: ArtifactStore;
  runSignals: RunSignals;
  publicUrl: string;
  /** Aborted when Tower shuts down: followers and log reads end at once. */
  shutdown?: AbortSignal;
  maxFollowersPerClient?: number;
}) {
  const queries = createMinionQueries(deps.db);
  const urls = createUrls(deps.publicUrl);
  const maxFollowers = deps.maxFollowersPerClient ?? DEFAULT_MAX_FOLLOWERS_PER_CLIENT;
  const followers = createSlots(maxFollowers);

  async function runDetail(runId: number): Promise<RunDetail> {
    const detail = await queries.runDetail(runId);
    if (!detail) throw new NotFoundError(`No run ${runId}`);
    return detail;
  }

  return {
    /** A page of the graph's jobs (GraphPage); a 10,000-job graph is read a page at a time. */
    async graph(graphId: number, page: GraphPageRequest = {}): Promise<GraphPage> {
      const found = await deps.scheduler.graphPage({
        graphId,
        after: page.after,
        limit: page.limit ?? DEFAULT_GRAPH_PAGE,
      });
      if (!found) throw new NotFoundError(`No graph ${graphId}`);
      return found;
    },

    /** One job with its runs (newest last), and the latest run's log tail. */
    async job(jobId: number) {
      const found = await deps.scheduler.jobStatus({ jobId });
      if (!found) throw new NotFoundError(`No job ${jobId}`);
      const latest = found.job.runs.at(-1);
      let tail = '';
      if (latest) {
        const ends = await queries.logEnds(latest.id, 1);
        tail = (ends.last[0] ?? '').slice(-20_000);
      }
      return { ...found, logTail: tail };
    },

    async run(runId: number): Promise<RunView> {
      const detail = await runDetail(runId);
      return { ...detail, manifestUrl: urls.manifest(runId), logUrl: urls.log(runId) };
    },

    async manifest(runId: number): Promise<ArtifactManifest> {
      const detail = await runDetail(runId);
      const rows = await queries.artifactsOfRun(runId);
      return {
        version: 1,
        runId,
        jobId: detail.jobId,
        label: detail.label,
        result: detail.result,
        artifacts: rows.map((row) => ({
          name: row.name,
          size: row.size,
          sha256: row.sha256,
          contentType: row.contentType,
          url: urls.artifact(runId, row.name),
        })),
      };
    },

    async artifact(
      runId: number,
      name: string,
    ): Promise<{ contentType: string; size: number; body: ReadableStream<Uint8Array> }> {
      const row = await queries.artifact(runId, name);
      const body = row && (await deps.artifacts.get(row.storageKey));
      if (!row || !body) throw new NotFoundError(`Run ${runId} has no artifact ${name}`);
      return { contentType: row.contentType, size: row.size, body };
    },

    /**
     * The whole log, every chunk in sequence order, read from the database
     * a page at a time as the reader takes it (never whole in memory).
     * Ends early, with an error, when Tower shuts down.
     */
    async log(runId: number): Promise<ReadableStream<Uint8Array>> {
      await runDetail(runId);
      const encoder = new TextEncoder();
      let after = -1;
      let stopShutdown: (() => void) | undefined;
      return new ReadableStream<Uint8Array>(
        {
          start(controller) {
            const shutdown = deps.shutdown;
            if (!shutdown) return;
            const stop = () =>
              controller.error(new ShuttingDownError('Tower is shutting down: read the log again'));
            if (shutdown.aborted) return stop();
            shutdown.addEventListener('abort', stop, { once: true });
            stopShutdown = () => shutdown.removeEventListener('abort', stop);
          },
          async pull(controller) {
            const page = await queries.logChunks(runId, after, LOG_PAGE_CHUNKS);
            for (const chunk of page) {
              after = chunk.seq;
              controller.enqueue(encoder.encode(chunk.data));
            }
            if (page.length < LOG_PAGE_CHUNKS) {
              stopShutdown?.();
              controller.close();
            }
          },
          cancel() {
            stopShutdown?.();
          },
        },
        // Nothing read ahead: a page is read when the reader takes the last one.
        { highWaterMark: 0 },
      );
    },

    /**
     * Admits one more log follower for `client` (an address, or later a
     * signed-in identity); the function it returns lets it go. Throws
     * TooManyRequestsError when the client has as many open as it may.
     */
    admitFollower(client: string): () => void {
      const release = followers.take(client);
      if (!release) {
        throw new TooManyRequestsError(
          `This client follows ${maxFollowers} logs already, the most it may follow at once: ` +
            'close one (or read the log without ?follow) and try again',
          FOLLOW_RETRY_AFTER_SECONDS,
        );
      }
      return release;
    },

    /**
     * The chunks there are, then new ones as they arrive, until the run is
     * done (or `signal` aborts, or Tower shuts down). Read a page at a time;
     * this replica's new output wakes the follower, and it looks for other
     * replicas' with back-off. Chunks arriving out of order behind one
     * already sent are in the full log, not in the stream.
     */
    async *followLog(
      runId: number,
      signal?: AbortSignal,
    ): AsyncGenerator<{ seq: number; data: string }, void> {
      await runDetail(runId);
      const stop = new AbortController();
      const abort = () => stop.abort();
      signal?.addEventListener('abort', abort);
      deps.shutdown?.addEventListener('abort', abort);
      if (signal?.aborted || deps.shutdown?.aborted) stop.abort();
      let signalled = false;
      let wake: (() => void) | undefined;
      const unsubscribe = deps.runSignals.subscribe(runId, () => {
        signalled = true;
        wake?.();
      });
      try {
        let last = -1;
        let pollMs = FOLLOW_POLL_MS;
        for (;;) {
          signalled = false;
          // The state is read before the chunks: a run done then has all its chunks already.
          const done = (await runDetail(runId)).state === 'done';
          let page: { seq: number; data: string }[];
          let news = false;
          do {
            page = await queries.logChunks(runId, last, LOG_PAGE_CHUNKS);
            for (const chunk of page) {
              last = chunk.seq;
              news = true;
              yield chunk;
              if (stop.signal.aborted) return;
            }
          } while (page.length === LOG_PAGE_CHUNKS);
          if (done || stop.signal.aborted) return;
          pollMs = news ? FOLLOW_POLL_MS : Math.min(pollMs * 2, FOLLOW_POLL_MAX_MS);
          if (signalled) continue;
          await new Promise<void>((resolve) => {
            const finish = () => {
              clearTimeout(timer);
              stop.signal.removeEventListener('abort', finish);
              wake = undefined;
              resolve();
            };
            const timer = setTimeout(finish, pollMs);
            stop.signal.addEventListener('abort', finish);
            wake = finish;
          });
          if (signalled) pollMs = FOLLOW_POLL_MS;
        }
      } finally {
        unsubscribe();
        signal?.removeEventListener('abort', abort);
        deps.shutdown?.removeEventListener('abort', abort);
      }
    },

    /** A page of the registered minions by id; `next` is the id to ask after, null on the last page. */
    async minions(
      page: { after?: number | undefined; limit?: number | undefined } = {},
    ): Promise<{ minions: MinionView[]; next: number | null }> {
      const limit = page.limit ?? DEFAULT_MINION_PAGE;
      const rows = await queries.listMinions({
        ...(page.after === undefined ? {} : { after: page.after }),
        limit: limit + 1,
      });
      const more = rows.length > limit;
      const shown = more ? rows.slice(0, limit) : rows;
      return { minions: shown.map(minionView), next: more ? shown[shown.length - 1]!.id : null };
    },

    /** Pending command jobs counted by tag set; untrusted graphs' jobs queue apart. */
    async queue(): Promise<{ tags: string[]; trust: 'trusted' | 'untrusted'; pending: number }[]> {
      return queries.pendingByTagSet();
    },
  };
}

export type Reads = ReturnType<typeof createReads>;
