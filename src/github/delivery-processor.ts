import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** A claim of a delivery: `attempts` counts claims, so it tells this claim from a later one. */
export type DeliveryLease = { id: string; attempts: number };

/**
 * Stored deliveries as a leased queue; the database implements it. `complete`
 * and `fail` answer false when the lease had lapsed and a later claim took
 * the delivery: that claim's outcome stands.
 */
export type DeliveryQueue = {
  claim(
    now: Date,
    leaseMs: number,
  ): Promise<{ id: string; event: string; payload: unknown; attempts: number } | undefined>;
  complete(lease: DeliveryLease, now: Date): Promise<boolean>;
  fail(lease: DeliveryLease, now: Date, error: string, retryAt: Date | undefined): Promise<boolean>;
};

export type StoredWebhook = { id: string; name: string; payload: unknown };

export type DeliveryProcessorOptions = {
  queue: DeliveryQueue;
  /** Runs the handlers for one delivery; Probot's `receive` in production. */
  handle: (webhook: StoredWebhook) => Promise<void>;
  clock: Clock;
  logger: Logger;
  /** Workers in this process. */
  concurrency?: number;
  /** How often an idle worker looks for deliveries stored by other replicas. */
  pollIntervalMs?: number;
  leaseMs?: number;
  maxAttempts?: number;
  onProcessed?: (event: string, outcome: 'done' | 'retry' | 'failed') => void;
};

export type DeliveryProcessor = {
  start(): void;
  /** A delivery was stored here: look now rather than at the next poll. */
  wake(): void;
  /** Processes every delivery that is due, then returns. */
  drain(): Promise<void>;
  /** Stops taking deliveries and waits for those in hand. */
  stop(): Promise<void>;
};

export function createDeliveryProcessor({
  queue,
  handle,
  clock,
  logger,
  concurrency = 2,
  pollIntervalMs = 1000,
  leaseMs = 60_000,
  maxAttempts = 5,
  onProcessed,
}: DeliveryProcessorOptions): DeliveryProcessor {
  const log = logger.child({ component: 'delivery-processor' });
  let running = false;
  let workers: Promise<void>[] = [];
  const sleepers = new Set<() => void>();

  async function processOne(): Promise<boolean> {
    const delivery = await queue.claim(clock.now(), leaseMs);
    if (!delivery) return false;
    const fields = { deliveryId: delivery.id, event: delivery.event, attempt: delivery.attempts };
    const lease = { id: delivery.id, attempts: delivery.attempts };
    let failure: { error: unknown } | undefined;
    try {
      await handle({ id: delivery.id, name: delivery.event, payload: delivery.payload });
    } catch (error) {
      failure = { error };
    }
    if (!failure) {
      if (await queue.complete(lease, clock.now())) {
        log.debug(fields, 'webhook processed');
        onProcessed?.(delivery.event, 'done');
      } else {
        log.warn(fields, 'webhook processed after its lease lapsed; the later claim decides');
      }
      return true;
    }
    const now = clock.now();
    const retry = delivery.attempts < maxAttempts;
    const retryAt = retry ? new Date(now.getTime() + backoffMs(delivery.attempts)) : undefined;
    if (await queue.fail(lease, now, errorMessage(failure.error), retryAt)) {
      log.warn({ ...fields, err: failure.error, retryAt }, 'webhook handler failed');
      onProcessed?.(delivery.event, retry ? 'retry' : 'failed');
    } else {
      log.warn(
        { ...fields, err: failure.error },
        'webhook handler failed after its lease lapsed; the later claim decides',
      );
    }
    return true;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  }

  async function work(): Promise<void> {
    while (running) {
      try {
        if (!(await processOne())) await sleep(pollIntervalMs);
      } catch (error) {
        // The database is unreachable or similar: wait and try again.
        log.error({ err: error }, 'cannot claim webhook deliveries');
        await sleep(pollIntervalMs);
      }
    }
  }

  const wakeAll = () => {
    for (const wake of [...sleepers]) wake();
  };

  return {
    start() {
      if (running) return;
      running = true;
      workers = Array.from({ length: concurrency }, () => work());
    },
    wake: wakeAll,
    async drain() {
      while (await processOne()) {
        // keep going until nothing is due
      }
    },
    async stop() {
      running = false;
      wakeAll();
      await Promise.all(workers);
      workers = [];
    },
  };
}

/** 2 s, 4 s, 8 s … capped at 5 minutes. */
export function backoffMs(attempts: number): number {
  return Math.min(2 ** attempts * 1000, 5 * 60_000);
}
