import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import {
  backoffMs,
  createDeliveryProcessor,
  type StoredWebhook,
} from '../src/github/delivery-processor.js';
import type { Clock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { backends, type TestDatabase } from './support/databases.js';

const logger = createLogger({ level: 'silent' });

function manualClock(start: Date): Clock & { advance(ms: number): void } {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms) => (now += ms) };
}

describe.each(backends())('delivery processor on $name', (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await backend.open();
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
      bodyHash: 'retry-me',
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
      bodyHash: 'wake-me',
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

  it('lets only the holder of the lease finish a delivery', async () => {
    const queue = createDeliveryQueries(database.db);
    const clock = manualClock(new Date('2026-03-01T00:00:00Z'));
    await queue.record({
      id: 'slow-one',
      event: 'push',
      action: undefined,
      installationId: undefined,
      payload: {},
      bodyHash: 'slow-one',
      receivedAt: clock.now(),
    });
    const outcomes: string[] = [];
    const gates = new Map<string, () => void>();
    const processor = (name: string, fail: boolean) =>
      createDeliveryProcessor({
        queue,
        clock,
        logger,
        leaseMs: 60_000,
        handle: () =>
          new Promise<void>((resolve, reject) =>
            gates.set(name, () => (fail ? reject(new Error(`${name} broke`)) : resolve())),
          ),
        onProcessed: (_event, outcome) => outcomes.push(`${name}: ${outcome}`),
      });

    // A takes the delivery and stalls past its lease; B takes it over.
    const first = processor('a', false).drain();
    await vi.waitFor(() => expect(gates.has('a')).toBe(true));
    clock.advance(61_000);
    const second = processor('b', true).drain();
    await vi.waitFor(() => expect(gates.has('b')).toBe(true));
    expect(await queue.get('slow-one')).toMatchObject({ status: 'processing', attempts: 2 });

    // A finishes late: B still holds the delivery, and A's outcome is not recorded.
    gates.get('a')!();
    await first;
    expect(await queue.get('slow-one')).toMatchObject({ status: 'processing', attempts: 2 });
    expect(outcomes).toEqual([]);

    // B's outcome stands: it failed, so the delivery is tried again.
    gates.get('b')!();
    await second;
    expect(outcomes).toEqual(['b: retry']);
    expect(await queue.get('slow-one')).toMatchObject({
      status: 'pending',
      attempts: 2,
      lastError: 'b broke',
    });
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
        complete: async () => true,
        fail: async () => true,
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
