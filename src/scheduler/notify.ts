/**
 * Notify jobs' way out (docs/definitions.md, `kind: notify`): a port that the
 * scheduler hands each notification to, and the default adapter. Webhooks are
 * POSTed here; comments on the pull request or commit are GitHub's, so the
 * adapter hands them to an injectable function (by default it logs them) until
 * src/github/ implements comments behind its own port and main.ts passes that
 * function in.
 *
 * Webhooks reach only the public internet: the host is resolved once, every
 * address it has is checked (loopback, private, link-local and the like are
 * refused unless the allowlist names them), and the connection goes to the
 * checked address, so a name cannot resolve elsewhere between check and
 * connect. Redirects are not followed, the response body is not read, the
 * whole call has one deadline, and failures are told in words that name no
 * internal address or port (a run's log is as public as its repository).
 */
import { createHmac } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { EventType } from '../lib/graph-spec.js';
import { TowerError } from '../lib/errors.js';
import {
  emptyAllowList,
  isAllowed,
  nonPublicReason,
  type HostAllowList,
} from '../lib/ip-ranges.js';
import type { Logger } from '../lib/logger.js';

/** Everything a comment or a webhook call needs to say what happened where. */
export type Notification = {
  repositoryId: number;
  sha: string;
  /** The event that built the graph: its row (for the pull request number, say) and its kind. */
  event: { id: number; type: EventType; branch: string };
  graph: { id: number; name: string };
  job: { id: number; label: string };
  /** The notify job's run that sends this: one notification per run, never two. */
  runId: number;
  /** The comment's text (substituted), or null for none. */
  comment: string | null;
  /** The URL to POST to, or null for none. */
  webhook: string | null;
};

/**
 * Delivers a notification: the comment, if any, and the webhook call, if
 * any. Resolves when everything was delivered; rejects (with a message meant
 * for people) when something was not: the notify job then ends `exception`.
 */
export type NotifyPort = { send(notification: Notification): Promise<void> };

/** A webhook was refused, answered with a status other than 2xx, or could not be reached. */
export class NotifyError extends TowerError {
  override readonly name = 'NotifyError';
}

/** The JSON body of a webhook call, format version 1. */
export type WebhookBody = {
  version: 1;
  repositoryId: number;
  sha: string;
  event: Notification['event'];
  graph: Notification['graph'];
  job: Notification['job'];
  runId: number;
  comment: string | null;
};

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** The header that carries the body's HMAC SHA-256, as GitHub's `X-Hub-Signature-256`. */
export const SIGNATURE_HEADER = 'x-tower-signature-256';

export function webhookBody(n: Notification): WebhookBody {
  return {
    version: 1,
    repositoryId: n.repositoryId,
    sha: n.sha,
    event: n.event,
    graph: n.graph,
    job: n.job,
    runId: n.runId,
    comment: n.comment,
  };
}

/** `sha256=<hex>`: the HMAC SHA-256 of the body under the secret, as receivers check it. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Resolves a host name to every address it has (the system resolver, /etc/hosts included). */
export type ResolveHost = (host: string) => Promise<{ address: string; family: number }[]>;

const resolveWithSystem: ResolveHost = (host) => lookup(host, { all: true, verbatim: true });

export function createNotifyAdapter({
  timeoutMs = DEFAULT_WEBHOOK_TIMEOUT_MS,
  logger,
  comment,
  userAgent = 'tower',
  allowHosts = emptyAllowList,
  secret,
  resolveHost = resolveWithSystem,
}: {
  timeoutMs?: number;
  logger?: Logger | undefined;
  /** Posts the comment; by default it is logged (GitHub comments come with the GitHub port). */
  comment?: (notification: Notification & { comment: string }) => Promise<void>;
  userAgent?: string;
  /** Internal hosts and ranges webhooks may reach (TOWER_NOTIFY_ALLOW_HOSTS); none by default. */
  allowHosts?: HostAllowList | undefined;
  /** Signs every call (TOWER_NOTIFY_SECRET); absent, calls are not signed. */
  secret?: string | undefined;
  resolveHost?: ResolveHost;
} = {}): NotifyPort {
  const postComment =
    comment ??
    (async (n: Notification & { comment: string }) => {
      logger?.info(
        { repositoryId: n.repositoryId, sha: n.sha, graphId: n.graph.id, job: n.job.label },
        'notify comment (not posted: no GitHub comment port yet)',
      );
    });

  /**
   * The address to connect to: the host resolved, every address it has
   * checked (a name with one private address among public ones is refused).
   */
  async function target(
    url: URL,
    signal: AbortSignal,
  ): Promise<{ address: string; family: 4 | 6 }> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const literal = isIP(host);
    const addresses =
      literal === 0
        ? await abortable(resolveHost(host), signal).catch((error: unknown) => {
            if (signal.aborted) throw error;
            throw new NotifyError(`the host name ${host} does not resolve`);
          })
        : [{ address: host, family: literal }];
    if (addresses.length === 0) throw new NotifyError(`the host name ${host} does not resolve`);
    for (const { address } of addresses) {
      const why = nonPublicReason(address);
      if (why !== undefined && !isAllowed(allowHosts, host, address)) {
        throw new NotifyError(
          `refused: the address is ${why}; an internal hook must be listed in TOWER_NOTIFY_ALLOW_HOSTS`,
        );
      }
    }
    const first = addresses[0]!;
    return { address: first.address, family: first.family === 6 ? 6 : 4 };
  }

  /** POSTs the body to the checked address (no second lookup), and answers the status; the body is not read. */
  function call(
    url: URL,
    to: { address: string; family: 4 | 6 },
    body: string,
    signal: AbortSignal,
  ) {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': userAgent,
    };
    if (secret !== undefined) headers[SIGNATURE_HEADER] = webhookSignature(secret, body);
    // The connection goes to the address that was checked, whatever the name resolves to now.
    const pinned: LookupFunction = (_host, options, done) => {
      if (options.all) done(null, [{ address: to.address, family: to.family }]);
      else done(null, to.address, to.family);
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<number>((resolve, reject) => {
      const outgoing = request(url, {
        method: 'POST',
        headers,
        lookup: pinned,
        agent: false,
        signal,
      });
      outgoing.on('response', (response) => {
        // Only the status matters: the body is never read, so its size does not either.
        resolve(response.statusCode ?? 0);
        response.destroy();
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  async function post(webhook: string, n: Notification): Promise<void> {
    const fail = (problem: string, cause?: unknown) =>
      new NotifyError(`webhook ${webhook} ${problem}`, { cause });
    let url: URL;
    try {
      url = new URL(webhook);
    } catch (error) {
      throw fail('refused: not a URL', error);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw fail('refused: only http:// and https:// URLs are called');
    }
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number;
    try {
      status = await call(url, await target(url, signal), JSON.stringify(webhookBody(n)), signal);
    } catch (error) {
      if (error instanceof NotifyError) throw fail(error.message, error);
      if (signal.aborted) throw fail(`gave no answer within ${timeoutMs / 1000} s`, error);
      // Never the socket's own text: it would name internal addresses and ports.
      throw fail(`could not be reached: ${connectionProblem(error)}`, error);
    }
    if (status < 200 || status > 299) {
      throw fail(
        `answered HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
      );
    }
  }

  return {
    async send(n) {
      if (n.comment !== null) await postComment({ ...n, comment: n.comment });
      if (n.webhook !== null) await post(n.webhook, n);
    },
  };
}

/** Resolves or rejects with the promise, or rejects when the signal aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new Error('aborted', { cause: signal.reason }));
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** What went wrong with the connection, in words that name no address or port. */
function connectionProblem(error: unknown): string {
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was reset';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'no route to the host';
  if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH)/.test(code)) {
    return 'the TLS handshake failed (is the certificate valid for the host?)';
  }
  return 'the connection failed';
}
