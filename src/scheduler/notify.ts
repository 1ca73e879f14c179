/**
 * Notify jobs' way out (docs/definitions.md, `kind: notify`): a port that the
 * scheduler hands each notification to, and the default adapter. Webhooks are
 * POSTed here; comments on the pull request or commit are GitHub's, so the
 * adapter hands them to an injectable function (by default it logs them) until
 * src/github/ implements comments behind its own port and main.ts passes that
 * function in.
 */
import type { EventType } from '../lib/graph-spec.js';
import { errorMessage, TowerError } from '../lib/errors.js';
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

/** A webhook answered with a status other than 2xx, or could not be reached. */
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

export function createNotifyAdapter({
  fetch = globalThis.fetch,
  timeoutMs = DEFAULT_WEBHOOK_TIMEOUT_MS,
  logger,
  comment,
  userAgent = 'tower',
}: {
  fetch?: typeof globalThis.fetch;
  timeoutMs?: number;
  logger?: Logger | undefined;
  /** Posts the comment; by default it is logged (GitHub comments come with the GitHub port). */
  comment?: (notification: Notification & { comment: string }) => Promise<void>;
  userAgent?: string;
} = {}): NotifyPort {
  const postComment =
    comment ??
    (async (n: Notification & { comment: string }) => {
      logger?.info(
        { repositoryId: n.repositoryId, sha: n.sha, graphId: n.graph.id, job: n.job.label },
        'notify comment (not posted: no GitHub comment port yet)',
      );
    });

  async function post(url: string, n: Notification): Promise<void> {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': userAgent },
        body: JSON.stringify(webhookBody(n)),
        signal: AbortSignal.timeout(timeoutMs),
        // A webhook that redirects is answered as it is: no credentials or bodies follow a redirect.
        redirect: 'manual',
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw new NotifyError(
        timedOut
          ? `webhook ${url} did not answer within ${timeoutMs / 1000} s`
          : `webhook ${url} could not be reached: ${describeFetchError(error)}`,
        { cause: error },
      );
    }
    // The body is not needed; reading it frees the connection.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) {
      throw new NotifyError(
        `webhook ${url} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
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

/** fetch's TypeError says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND…). */
function describeFetchError(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause === undefined
    ? errorMessage(error)
    : `${errorMessage(error)} (${errorMessage(cause)})`;
}
