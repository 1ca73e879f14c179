/**
 * Wake-ups for long-polling claims (DESIGN.md "Dispatch"): "jobs may have
 * become claimable". A notification carries nothing; every waiter that hears
 * it tries its claim once more. In-process on PGlite (one process owns the
 * database), LISTEN/NOTIFY on PostgreSQL so that replicas wake each other.
 */
import { EventEmitter } from 'node:events';
import { listenJobs, notifyJobs } from '../db/job-notifications.js';
import type { TowerDb } from '../db/connection.js';
import type { Logger } from '../lib/logger.js';

export type Notifier = {
  /** Call after the transaction that made jobs pending has committed. Never rejects. */
  notify(): Promise<void>;
  /**
   * Calls `listener` on every notification until the returned function is
   * called. Resolves once notifications reach the listener, so a claim tried
   * after it cannot miss one sent meanwhile.
   */
  subscribe(listener: () => void): Promise<() => void>;
  close(): Promise<void>;
};

const WAKE = 'wake';

function emitter(): EventEmitter {
  const events = new EventEmitter();
  // Every waiting claim listens; their number is bounded by the minions, not by a constant.
  events.setMaxListeners(0);
  return events;
}

function subscribeTo(events: EventEmitter, listener: () => void): () => void {
  events.on(WAKE, listener);
  return () => void events.off(WAKE, listener);
}

export function createInProcessNotifier(): Notifier {
  const events = emitter();
  return {
    async notify() {
      events.emit(WAKE);
    },
    async subscribe(listener) {
      return subscribeTo(events, listener);
    },
    async close() {
      events.removeAllListeners();
    },
  };
}

/**
 * One LISTEN connection per process, opened at the first subscription and
 * fanned out to local waiters; this process's own NOTIFYs come back through it.
 */
export function createPostgresNotifier({ db, logger }: { db: TowerDb; logger: Logger }): Notifier {
  const events = emitter();
  let listening: Promise<() => Promise<void>> | undefined;
  const startListening = () => {
    listening ??= listenJobs(db, () => events.emit(WAKE)).catch((error: unknown) => {
      listening = undefined;
      throw error;
    });
    return listening;
  };
  return {
    async notify() {
      try {
        await notifyJobs(db);
      } catch (error) {
        // The change is committed; waiters find it when their wait ends.
        logger.warn({ err: error }, 'job notification failed');
      }
    },
    async subscribe(listener) {
      await startListening();
      return subscribeTo(events, listener);
    },
    async close() {
      events.removeAllListeners();
      const unlisten = await listening?.catch(() => undefined);
      listening = undefined;
      await unlisten?.().catch(() => undefined);
    },
  };
}
