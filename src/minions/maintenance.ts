/**
 * The periodic loop that ends lapsed leases and applies timeouts. Times come
 * from the scheduler's clock; the interval is wall-clock time.
 */
import type { Logger } from '../lib/logger.js';
import type { Scheduler } from '../scheduler/scheduler.js';

export type Maintenance = {
  /** One pass; what it changed. Tests call it directly. */
  tick(): Promise<{ expiredLeases: number; timeouts: number }>;
  start(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
};

export function createMaintenance({
  scheduler,
  logger,
  intervalMs = 5000,
}: {
  /** The scheduler with wake-ups, so that a retry after a lapsed lease wakes claims. */
  scheduler: Pick<Scheduler, 'expireLeases' | 'enforceTimeouts'>;
  logger: Logger;
  intervalMs?: number;
}): Maintenance {
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> | undefined;

  async function tick() {
    const expiredLeases = await scheduler.expireLeases();
    const timeouts = await scheduler.enforceTimeouts();
    if (expiredLeases + timeouts > 0) logger.info({ expiredLeases, timeouts }, 'maintenance pass');
    return { expiredLeases, timeouts };
  }

  return {
    tick,
    start() {
      timer ??= setInterval(() => {
        // A slow pass is not overlapped by the next.
        pass ??= tick()
          .catch((error: unknown) => logger.error({ err: error }, 'maintenance pass failed'))
          .finally(() => {
            pass = undefined;
          });
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await pass;
    },
  };
}
