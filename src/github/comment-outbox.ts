/**
 * Posts the comments Tower queued (src/db/outgoing-comments.ts), each once,
 * within the installation's content budget, retrying what GitHub refused
 * for a while: a comment is never lost to a busy minute.
 */
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { createLoop } from '../lib/loop.js';
import { GitHubError, type GitHubPort } from './port.js';

export type QueuedComment = {
  id: number;
  /** Posted already: the new body edits it. */
  githubId: number | null;
  installationId: number;
  fullName: string;
  issueNumber: number;
  body: string;
  attempts: number;
};

export type CommentOutbox = {
  enqueue(comment: {
    dedupKey: string;
    installationId: number;
    fullName: string;
    issueNumber: number;
    body: string;
    replace?: boolean;
  }): Promise<void>;
  takeDue(now: Date, leaseMs: number, limit: number): Promise<QueuedComment[]>;
  markSent(id: number, githubId: number, at: Date): Promise<void>;
  retryLater(id: number, dueAt: Date, error: string): Promise<void>;
  abandon(id: number, at: Date, error: string): Promise<void>;
};

/** Shared with the check publisher (src/db/github-budget.ts). */
export type ContentBudget = {
  take(
    installationId: number,
    wanted: number,
    now: Date,
  ): Promise<{ granted: number; retryAt: Date | null; backingOff: boolean }>;
  /** GitHub refused with a rate limit: answers when to try again. */
  refused(installationId: number, now: Date, retryAt: Date | undefined): Promise<Date>;
  /** A request went through: the back-off starts again. */
  succeeded(installationId: number): Promise<void>;
};

const MAX_ATTEMPTS = 20;

export function createCommentSender(options: {
  outbox: CommentOutbox;
  budget: ContentBudget;
  github: GitHubPort;
  clock: Clock;
  logger?: Logger;
  intervalMs?: number;
}) {
  const { outbox, budget, github, clock, logger } = options;

  async function send(comment: QueuedComment): Promise<void> {
    const now = clock.now();
    const { granted, retryAt, backingOff } = await budget.take(comment.installationId, 1, now);
    if (granted === 0) {
      await outbox.retryLater(
        comment.id,
        retryAt ?? new Date(now.getTime() + 5000),
        'waiting for the content budget',
      );
      return;
    }
    const [owner = '', repo = ''] = comment.fullName.split('/');
    try {
      const target = { installationId: comment.installationId, owner, repo };
      let id = comment.githubId;
      if (id === null) id = await github.createComment(target, comment.issueNumber, comment.body);
      else await github.updateComment(target, id, comment.body);
      await outbox.markSent(comment.id, id, clock.now());
      if (backingOff) await budget.succeeded(comment.installationId);
    } catch (error) {
      const failure = error instanceof GitHubError ? error : undefined;
      const limitedUntil = failure?.rateLimited
        ? await budget.refused(comment.installationId, clock.now(), failure.retryAt)
        : undefined;
      if ((failure && !failure.transient) || comment.attempts >= MAX_ATTEMPTS) {
        logger?.error({ err: error, commentId: comment.id }, 'comment not posted; given up');
        await outbox.abandon(comment.id, clock.now(), errorMessage(error));
        return;
      }
      // Backs off: 5 s, 10 s, 20 s … up to 10 min.
      const backoff = Math.min(600_000, 5000 * 2 ** Math.min(comment.attempts - 1, 7));
      await outbox.retryLater(
        comment.id,
        limitedUntil ?? new Date(clock.now().getTime() + backoff),
        errorMessage(error),
      );
    }
  }

  async function tick(): Promise<number> {
    let sent = 0;
    for (;;) {
      const due = await outbox.takeDue(clock.now(), 60_000, 20);
      if (due.length === 0) return sent;
      for (const comment of due) {
        await send(comment);
        sent++;
      }
    }
  }

  return {
    tick,
    ...createLoop({
      name: 'comment sender',
      pass: tick,
      intervalMs: options.intervalMs ?? 1000,
      logger,
    }),
  };
}

export type CommentSender = ReturnType<typeof createCommentSender>;
