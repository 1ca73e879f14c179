import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import {
  backoffMs,
  createDeliveryProcessor,
  type StoredWebhook,
} from '../src/github/delivery-processor.js';
import type { Clock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { pgliteBackend, type TestDatabase } from './support/databases.js';

const logger = createLogger({ level: 'silent' });

function manualClock(start: Date): Clock & { advance(ms: number): void } {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms) => (now += ms) };
}

describe('delivery processor', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await pgliteBackend.open();
  });
  afterAll(async () => {
    await database.dispose();
  });

  it('backs off exponentially up to five minutes', () => {
    expect([1, 2, 3, 8, 9, 20].map(backoffMs)).toEqual([
      2000, 4000, 8000, 256_000, 300_000, 300_000,
    ]);
  });

  it('retries a failing handler with backoff, then marks the delivery failed', async () => {
    const queue = createDeliveryQueries(database.db);
    const clock = manualClock(new Date('2026-02-01T00:00:00Z'));
    const outcomes: string[] = [];
    const processor = createDeliveryProcessor({
      queue,
      clock,
      logger,
      maxAttempts: 3,
      handle: async () => {
        throw new Error('handler broke');
      },
      onProcessed: (_event, outcome) => outcomes.push(outcome),
    });
    await queue.record({
      id: 'retry-me',
      event: 'push',
      action: undefined,
      installationId: undefined,
      payload: {},
      receivedAt: clock.now(),
    });
    await processor.drain();
    expect(await queue.get('retry-me')).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastError: 'handler broke',
      availableAt: new Date(clock.now().getTime() + 2000),
    });
    await processor.drain();
    expect(outcomes).toEqual(['retry']); // not due yet
    clock.advance(2000);
    await processor.drain();
    clock.advance(4000);
    await processor.drain();
    expect(outcomes).toEqual(['retry', 'retry', 'failed']);
    expect(await queue.get('retry-me')).toMatchObject({ status: 'failed', attempts: 3 });
  });

  it('processes as soon as it is woken, and finishes in-flight work when stopped', async () => {
    const queue = createDeliveryQueries(database.db);
    const handled: StoredWebhook[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const processor = createDeliveryProcessor({
      queue,
      clock: { now: () => new Date() },
      logger,
      // Long enough that only a wake-up can explain prompt processing.
      pollIntervalMs: 60_000,
      handle: async (webhook) => {
        handled.push(webhook);
        await gate;
      },
    });
    processor.start();
    processor.start(); // idempotent
    await new Promise((resolve) => setTimeout(resolve, 50));
    await queue.record({
      id: 'wake-me',
      event: 'ping',
      action: undefined,
      installationId: undefined,
      payload: { zen: 'hi' },
      receivedAt: new Date(),
    });
    processor.wake();
    await expect.poll(() => handled.length, { timeout: 5000 }).toBe(1);
    expect(handled[0]).toEqual({ id: 'wake-me', name: 'ping', payload: { zen: 'hi' } });

    const stopped = processor.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false); // waits for the handler in hand
    release();
    await stopped;
    expect(await queue.get('wake-me')).toMatchObject({ status: 'done' });
  });

  it('keeps running when the database is unreachable, and says so', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    const processor = createDeliveryProcessor({
      queue: {
        claim: async () => {
          throw new Error('connection refused');
        },
        complete: async () => {},
        fail: async () => {},
      },
      clock: { now: () => new Date() },
      logger: createLogger({ level: 'error', destination }),
      pollIntervalMs: 10,
      handle: async () => {},
    });
    processor.start();
    await expect.poll(() => lines.length).toBeGreaterThan(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'cannot claim webhook deliveries',
      err: { message: 'connection refused' },
    });
    await processor.stop();
  });
});
