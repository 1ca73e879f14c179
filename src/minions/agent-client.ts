/**
 * The minion agent's side of the minion protocol v1 (docs/api.md): typed
 * calls over HTTP, answers parsed before use. Transient failures (the
 * server restarting, a network blip, a 5xx) are retried with backoff, so a
 * server that is killed and restarted loses the agent nothing; log chunks
 * carry sequence numbers and reports are answered 409 once taken, so a
 * retried call is never applied twice.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { TowerError, errorMessage } from '../lib/errors.js';
import type { JobResult } from '../lib/graph-spec.js';

/** The server refused the call for good (4xx other than a run conflict). */
export class MinionApiError extends TowerError {
  override readonly name = 'MinionApiError';
  constructor(
    readonly status: number,
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${status} ${message}`);
  }
}

const JobSpecFields = z.object({
  label: z.string(),
  command: z.string().nullable(),
  env: z.record(z.string(), z.string()),
  artifacts: z.array(z.string()),
  maxRuntime: z.number().nullable(),
  idleTimeout: z.number().nullable(),
  chunk: z.union([z.object({ index: z.number(), count: z.number() }), z.unknown()]).nullable(),
});

export const ClaimedRunBody = z.object({
  readToken: z.string(),
  runId: z.number(),
  jobId: z.number(),
  graphId: z.number(),
  label: z.string(),
  attempt: z.number(),
  leaseSeconds: z.number(),
  sha: z.string(),
  repositoryId: z.number(),
  job: JobSpecFields,
  checkout: z
    .object({
      url: z.string(),
      token: z.string().nullable(),
      expiresAt: z.string().nullable(),
    })
    .nullable(),
  upstream: z.array(z.object({ label: z.string(), runId: z.number(), manifestUrl: z.string() })),
});
export type ClaimedRunBody = z.infer<typeof ClaimedRunBody>;

const Registered = z.object({ minionId: z.number(), credential: z.string() });
const Manifest = z.object({ version: z.literal(1) }).passthrough();

export type Report = {
  result: JobResult;
  exitCode?: number;
  reason?: 'minion-shutdown' | 'max-runtime' | 'idle-timeout';
};

export type ClientOptions = {
  /** The server's base URL, e.g. https://tower.example.com. */
  server: string;
  fetch?: typeof fetch;
  /** Stops retrying (the agent is shutting down). */
  signal?: AbortSignal;
  /** Called before each retry, for the agent's log. */
  onRetry?: (path: string, attempt: number, problem: string) => void;
  /** How long a call keeps retrying transient failures; claims retry for ever. */
  retryForMs?: number;
};

/** 'stop': the run is no longer this minion's (409); work on it must end unreported. */
export type RunAnswer<T> = T | 'stop';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

class TransientError extends Error {}

export function createMinionClient(options: ClientOptions) {
  const base = options.server.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const retryForMs = options.retryForMs ?? 10 * 60_000;
  let credential: string | undefined;

  /** One HTTP call; throws TransientError for what a retry may fix. */
  async function call(
    method: string,
    path: string,
    init: {
      token?: string;
      json?: unknown;
      body?: RequestInit['body'];
      headers?: Record<string, string>;
    },
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token ?? credential;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        method,
        headers,
        body: body ?? null,
        signal: signal ?? null,
        // A streamed upload (artifacts) must say so to fetch.
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new TransientError(errorMessage(error));
    }
    if (response.status >= 500 || response.status === 429) {
      await response.body?.cancel();
      throw new TransientError(`${response.status} ${response.statusText}`);
    }
    return response;
  }

  /** Retries transient failures with capped exponential backoff. */
  async function withRetries<T>(
    path: string,
    attempt: () => Promise<T>,
    forever = false,
    signal = options.signal,
  ): Promise<T> {
    const started = Date.now();
    for (let tries = 1; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof TransientError)) throw error;
        const out = !forever && Date.now() - started > retryForMs;
        if (out || signal?.aborted) {
          throw new MinionApiError(0, path, `unreachable: ${error.message}`);
        }
        options.onRetry?.(path, tries, error.message);
        await sleep(Math.min(250 * 2 ** Math.min(tries, 6), 10_000), signal);
      }
    }
  }

  async function refuse(response: Response, path: string): Promise<never> {
    let message = response.statusText;
    try {
      const body = (await response.json()) as { error?: string; message?: string };
      message = body.message ?? body.error ?? message;
    } catch {
      // not JSON: the status text says enough
    }
    throw new MinionApiError(response.status, path, message);
  }

  /** A call on a run: 409 means the run is not ours any more. */
  async function runCall(
    method: string,
    path: string,
    init: Parameters<typeof call>[2],
    retry = true,
  ): Promise<RunAnswer<Response>> {
    const once = async () => {
      const response = await call(method, path, init);
      if (response.status === 409) {
        await response.body?.cancel();
        return 'stop' as const;
      }
      if (!response.ok) return refuse(response, path);
      return response;
    };
    return retry ? withRetries(path, once) : once();
  }

  return {
    /** Uses this credential from now on. */
    useCredential(value: string) {
      credential = value;
    },

    async register(
      registrationToken: string,
      request: { name: string; tags: string[]; trust?: string; jobs?: string[] },
    ): Promise<z.infer<typeof Registered>> {
      const path = '/api/v1/minion/register';
      return withRetries(path, async () => {
        const response = await call('POST', path, { token: registrationToken, json: request });
        if (response.status !== 201) return refuse(response, path);
        return Registered.parse(await response.json());
      });
    },

    /** Long-polls for a run; undefined when none came within the wait. */
    async claim(waitSeconds: number, signal?: AbortSignal): Promise<ClaimedRunBody | undefined> {
      const path = '/api/v1/minion/claim';
      return withRetries(
        path,
        async () => {
          const response = await call('POST', path, { json: { waitSeconds } }, signal);
          if (response.status === 204) return undefined;
          if (response.status !== 200) return refuse(response, path);
          const body = z.object({ run: ClaimedRunBody }).parse(await response.json());
          return body.run;
        },
        true,
        signal,
      );
    },

    async heartbeat(runId: number, leaseSeconds: number): Promise<RunAnswer<'ok'>> {
      const path = `/api/v1/minion/runs/${runId}/heartbeat`;
      // Not retried here: the next heartbeat is the retry, well inside the lease.
      try {
        const answer = await runCall('POST', path, { json: { leaseSeconds } }, false);
        if (answer === 'stop') return 'stop';
        await answer.body?.cancel();
        return 'ok';
      } catch (error) {
        if (error instanceof TransientError) return 'ok';
        throw error;
      }
    },

    async appendLog(runId: number, seq: number, data: string): Promise<RunAnswer<'ok'>> {
      const answer = await runCall('POST', `/api/v1/minion/runs/${runId}/logs`, {
        json: { seq, data },
      });
      if (answer === 'stop') return 'stop';
      await answer.body?.cancel();
      return 'ok';
    },

    /** Streams the file; a retry re-reads it from the start (an upload replaces the name's bytes). */
    async putArtifact(
      runId: number,
      name: string,
      file: { path: string; size: number; contentType: string },
    ): Promise<RunAnswer<'ok'>> {
      const encoded = name.split('/').map(encodeURIComponent).join('/');
      const path = `/api/v1/minion/runs/${runId}/artifacts/${encoded}`;
      return withRetries(path, async () => {
        const handle = await open(file.path);
        try {
          const response = await call('PUT', path, {
            body: Readable.toWeb(handle.createReadStream()) as ReadableStream<Uint8Array>,
            headers: { 'content-type': file.contentType, 'content-length': String(file.size) },
          });
          if (response.status === 409) {
            await response.body?.cancel();
            return 'stop' as const;
          }
          if (response.status !== 201) return refuse(response, path);
          await response.body?.cancel();
          return 'ok' as const;
        } finally {
          await handle.close().catch(() => undefined);
        }
      });
    },

    /** 'stop' also when a retried report had been taken already. */
    async report(runId: number, report: Report): Promise<RunAnswer<'ok'>> {
      const answer = await runCall('POST', `/api/v1/minion/runs/${runId}/report`, {
        json: report,
      });
      if (answer === 'stop') return 'stop';
      await answer.body?.cancel();
      return 'ok';
    },

    /**
     * An upstream run's artifact manifest, from the URL the claim gave (Tower's
     * public URL). With the credential, a private repository's manifests are
     * readable while the minion runs a job of the graph.
     */
    async manifest(url: string): Promise<z.infer<typeof Manifest>> {
      const own = credential !== undefined;
      return withRetries(url, async () => {
        let response: Response;
        try {
          response = await doFetch(
            url,
            own ? { headers: { authorization: `Bearer ${credential}` } } : undefined,
          );
        } catch (error) {
          throw new TransientError(errorMessage(error));
        }
        if (response.status >= 500) throw new TransientError(String(response.status));
        if (!response.ok) return refuse(response, url);
        return Manifest.parse(await response.json());
      });
    },
  };
}

export type MinionClient = ReturnType<typeof createMinionClient>;
