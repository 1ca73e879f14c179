/**
 * A background pass that runs every `intervalMs`, and soon after `wake()`;
 * passes never overlap, and a wake during a pass runs another right after.
 */
import type { Logger } from './logger.js';

export type Loop = {
  start(): void;
  /** Something changed: run a pass soon rather than at the next interval. */
  wake(): void;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
};

export function createLoop(options: {
  name: string;
  pass: () => Promise<unknown>;
  intervalMs: number;
  logger?: Logger | undefined;
  /** How long a wake waits, so that a burst of changes makes one pass. */
  debounceMs?: number;
}): Loop {
  const { pass, intervalMs, logger, name, debounceMs = 20 } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let again = false;

  function schedule(ms: number) {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
    timer.unref();
  }

  function run() {
    if (stopped) return;
    again = false;
    running = pass()
      .then(
        () => undefined,
        (error: unknown) => logger?.error({ err: error, loop: name }, 'background pass failed'),
      )
      .finally(() => {
        running = undefined;
        if (!stopped) schedule(again ? 0 : intervalMs);
      });
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    wake() {
      if (stopped) return;
      if (running) again = true;
      else schedule(debounceMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
