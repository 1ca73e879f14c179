import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createApiTokens } from '../src/access/api-tokens.js';
import { createAccessQueries } from '../src/db/access.js';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import { createInstallationQueries } from '../src/db/installations.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { version } from '../src/lib/version.js';
import { createTower, type Tower } from '../src/main.js';
import { MAX_WEBHOOK_BYTES } from '../src/web/webhooks.js';
import { inProcessConfig } from './support/config.js';
import { backends, type TestDatabase } from './support/databases.js';
import { generateAppKey, installationCreatedPayload, sign } from './support/github-app.js';

const secret = 'webhook-secret-for-tests';
const logger = createLogger({ level: 'silent' });

function post(tower: Tower, body: string, headers: Record<string, string>) {
  return tower.app.request('/api/github/webhooks', {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

async function messageOf(response: Response): Promise<string> {
  return ((await response.json()) as { message: string }).message;
}

function webhook(deliveryId: string, payload: unknown, event = 'installation') {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'x-github-delivery': deliveryId,
      'x-github-event': event,
      'x-hub-signature-256': sign(secret, body),
    },
  };
}

describe.each(backends())('webhook intake on $name', (backend) => {
  let database: TestDatabase;
  let tower: Tower;
  /** /metrics is for operators. */
  let metrics: () => Promise<string>;
  beforeAll(async () => {
    database = await backend.open();
    tower = await createTower({
      config: inProcessConfig({ appId: 1, privateKey: generateAppKey(), webhookSecret: secret }),
      logger,
      database,
    });
    const { token } = await createApiTokens({
      queries: createAccessQueries(database.db),
      clock: systemClock,
    }).create({ name: 'metrics', scope: { operator: true } });
    metrics = async () => {
      const response = await tower.app.request('/metrics', {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(response.status).toBe(200);
      return response.text();
    };
  });
  afterAll(async () => {
    await database.dispose();
  });

  it('reports health with the database and the version', async () => {
    const response = await tower.app.request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'ok',
      version,
      database: { kind: backend.name, status: 'ok' },
    });
  });

  it('refuses a bad signature and stores nothing', async () => {
    const deliveries = createDeliveryQueries(database.db);
    const before = await deliveries.count();
    const { body, headers } = webhook('bad-sig', installationCreatedPayload(1, []));
    const forged = await post(tower, body, {
      ...headers,
      'x-hub-signature-256': sign('wrong', body),
    });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ error: 'webhook_rejected' });
    const tampered = await post(tower, body.replace('created', 'deleted'), headers);
    expect(tampered.status).toBe(401);
    const unsigned = await post(tower, body, { ...headers, 'x-hub-signature-256': '' });
    expect(unsigned.status).toBe(401);
    const malformed = await post(tower, body, { ...headers, 'x-hub-signature-256': 'sha256=zz' });
    expect(malformed.status).toBe(401);
    expect(await deliveries.count()).toBe(before);
    expect(await deliveries.get('bad-sig')).toBeUndefined();
  });

  it('refuses a signed request that is not a webhook, with the reason', async () => {
    const deliveries = createDeliveryQueries(database.db);
    const before = await deliveries.count();
    const noId = webhook('', { action: 'created' });
    const response = await post(tower, noId.body, noId.headers);
    expect(response.status).toBe(400);
    expect(await messageOf(response)).toBe('Missing or invalid X-GitHub-Delivery header');

    const noEvent = webhook('no-event', { action: 'created' }, '');
    expect((await post(tower, noEvent.body, noEvent.headers)).status).toBe(400);

    const notJson = 'this is not json';
    const notJsonResponse = await post(tower, notJson, {
      'x-github-delivery': 'not-json',
      'x-github-event': 'push',
      'x-hub-signature-256': sign(secret, notJson),
    });
    expect(notJsonResponse.status).toBe(400);
    expect(await messageOf(notJsonResponse)).toBe('Body is not JSON');

    const array = webhook('array', [1, 2]);
    expect((await post(tower, array.body, array.headers)).status).toBe(400);
    expect(await deliveries.count()).toBe(before);
  });

  it('stores a delivery once, processes it once, and keeps installations current', async () => {
    const payload = installationCreatedPayload(77, [
      { id: 7701, full_name: 'org-77/app' },
      { id: 7702, full_name: 'org-77/lib' },
    ]);
    const { body, headers } = webhook('delivery-77', payload);
    const first = await post(tower, body, headers);
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({
      deliveryId: 'delivery-77',
      event: 'installation',
      status: 'stored',
    });
    const again = await post(tower, body, headers);
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ status: 'duplicate' });

    // Answered before processing: nothing is processed until the processor runs.
    const installations = createInstallationQueries(database.db);
    expect(await installations.getInstallation(77)).toBeUndefined();

    await tower.processor?.drain();
    expect(await installations.getInstallation(77)).toMatchObject({
      accountLogin: 'org-77',
      accountType: 'Organization',
      removedAt: null,
    });
    expect((await installations.listRepositories(77)).map((r) => r.fullName)).toEqual([
      'org-77/app',
      'org-77/lib',
    ]);
    expect(await createDeliveryQueries(database.db).get('delivery-77')).toMatchObject({
      status: 'done',
      attempts: 1,
    });

    // A redelivery after processing changes nothing.
    expect(await (await post(tower, body, headers)).json()).toMatchObject({ status: 'duplicate' });
    await tower.processor?.drain();
    expect(await createDeliveryQueries(database.db).get('delivery-77')).toMatchObject({
      attempts: 1,
    });
  });

  it('follows repositories added and removed, and uninstallation', async () => {
    const installation = installationCreatedPayload(78, []).installation;
    const sender = { id: 1, login: 'octocat', type: 'User' };
    const added = webhook(
      'repos-78-added',
      {
        action: 'added',
        installation,
        repository_selection: 'selected',
        repositories_added: [{ id: 7801, full_name: 'org-78/a', name: 'a', private: true }],
        repositories_removed: [],
        sender,
      },
      'installation_repositories',
    );
    const removed = webhook(
      'repos-78-removed',
      {
        action: 'removed',
        installation,
        repository_selection: 'selected',
        repositories_added: [],
        repositories_removed: [{ id: 7801, full_name: 'org-78/a', name: 'a', private: true }],
        sender,
      },
      'installation_repositories',
    );
    expect((await post(tower, added.body, added.headers)).status).toBe(202);
    await tower.processor?.drain();
    const store = createInstallationQueries(database.db);
    expect(await store.listRepositories(78)).toMatchObject([
      { fullName: 'org-78/a', private: true, removedAt: null },
    ]);

    expect((await post(tower, removed.body, removed.headers)).status).toBe(202);
    await tower.processor?.drain();
    expect((await store.listRepositories(78))[0]?.removedAt).toBeInstanceOf(Date);

    const deleted = webhook('uninstall-78', {
      action: 'deleted',
      installation,
      repositories: [],
      sender,
    });
    expect((await post(tower, deleted.body, deleted.headers)).status).toBe(202);
    await tower.processor?.drain();
    expect((await store.getInstallation(78))?.removedAt).toBeInstanceOf(Date);
  });

  it('counts deliveries in the metrics', async () => {
    const text = await metrics();
    expect(text).toMatch(
      /tower_webhook_deliveries_received_total\{event="installation",outcome="stored"\} [1-9]/,
    );
    expect(text).toMatch(
      /tower_webhook_deliveries_received_total\{event="installation",outcome="rejected"\} [1-9]/,
    );
    expect(text).toMatch(
      /tower_webhook_deliveries_processed_total\{event="installation",outcome="done"\} [1-9]/,
    );
    expect(text).toContain('tower_http_request_duration_seconds_bucket');
  });

  it('keeps /metrics small when forged webhooks carry made-up event names', async () => {
    const before = (await metrics()).length;
    const forgedNames: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const event = `forged_${randomUUID().replaceAll('-', '_')}`;
      forgedNames.push(event);
      const body = JSON.stringify({ action: 'created', n: i });
      const response = await post(tower, body, {
        'x-github-delivery': randomUUID(),
        'x-github-event': event,
        'x-hub-signature-256': sign('not-the-secret', body),
      });
      expect(response.status).toBe(401);
    }
    // Made-up paths and methods are no labels either.
    for (let i = 0; i < 200; i++) {
      const path = `/forged-${randomUUID()}`;
      forgedNames.push(path);
      expect((await tower.app.request(path, { method: i % 2 ? 'GET' : 'BREW' })).status).toBe(404);
    }
    const text = await metrics();
    // A few new series at most (`other`, a 401, a 404): not one for each forgery.
    expect(text.length - before).toBeLessThan(20_000);
    for (const name of forgedNames) expect(text).not.toContain(name);
    expect(text).not.toContain('BREW');
    const others =
      /tower_webhook_deliveries_received_total\{event="other",outcome="rejected"\} (\d+)/.exec(
        text,
      );
    expect(Number(others?.[1])).toBeGreaterThanOrEqual(2000);
    expect(text).toContain('route="/api/github/webhooks"');
  });

  it('refuses a chunked body past 25 MiB with 413 as soon as it passes the limit', async () => {
    const deliveries = createDeliveryQueries(database.db);
    const before = await deliveries.count();
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let sent = 0;
    // 1 GiB on offer, made only as it is read (no queue ahead), without a Content-Length.
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent >= 1024 * chunk.length) return controller.close();
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    const response = await tower.app.request(
      new Request('http://tower/api/github/webhooks', {
        method: 'POST',
        body,
        duplex: 'half',
        headers: {
          'content-type': 'application/json',
          'x-github-delivery': 'too-big-chunked',
          'x-github-event': 'push',
          'x-hub-signature-256': sign(secret, '{}'),
        },
      }),
    );
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({
      error: 'webhook_rejected',
      message: 'Body is larger than 25 MiB, the most GitHub sends',
    });
    // Reading stopped at the limit: the rest of the gigabyte was never taken.
    expect(sent).toBeGreaterThan(MAX_WEBHOOK_BYTES);
    expect(sent).toBeLessThanOrEqual(MAX_WEBHOOK_BYTES + chunk.length);
    expect(await deliveries.count()).toBe(before);
  });

  it('refuses a Content-Length past 25 MiB with 413 without reading the body', async () => {
    // As much as it says, made only as it is read.
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled > MAX_WEBHOOK_BYTES) return controller.close();
          const chunk = new Uint8Array(Math.min(1024 * 1024, MAX_WEBHOOK_BYTES + 1 - pulled));
          pulled += chunk.length;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    const response = await tower.app.request(
      new Request('http://tower/api/github/webhooks', {
        method: 'POST',
        body,
        duplex: 'half',
        headers: {
          'content-type': 'application/json',
          'content-length': String(MAX_WEBHOOK_BYTES + 1),
          'x-github-delivery': 'too-big-declared',
          'x-github-event': 'push',
          'x-hub-signature-256': sign(secret, '{}'),
        },
      }),
    );
    expect(response.status).toBe(413);
    expect(pulled).toBe(0); // not a byte read
    expect(await createDeliveryQueries(database.db).get('too-big-declared')).toBeUndefined();
  });

  it('answers a replayed body under a new delivery id as a duplicate, and does not process it again', async () => {
    const installation = installationCreatedPayload(79, [{ id: 7901, full_name: 'org-79/app' }]);
    const created = webhook('install-79', installation);
    expect(await (await post(tower, created.body, created.headers)).json()).toMatchObject({
      status: 'stored',
    });
    await tower.processor?.drain();
    const uninstalled = webhook('uninstall-79', {
      ...installation,
      action: 'deleted',
    });
    expect((await post(tower, uninstalled.body, uninstalled.headers)).status).toBe(202);
    await tower.processor?.drain();
    const store = createInstallationQueries(database.db);
    expect((await store.getInstallation(79))?.removedAt).toBeInstanceOf(Date);

    // The captured, signed `installation.created` posted again under a fresh delivery id.
    const replay = await post(tower, created.body, {
      ...created.headers,
      'x-github-delivery': 'install-79-replayed',
    });
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual({
      deliveryId: 'install-79-replayed',
      event: 'installation',
      status: 'duplicate',
    });
    await tower.processor?.drain();
    expect((await store.getInstallation(79))?.removedAt).toBeInstanceOf(Date);
    expect(await createDeliveryQueries(database.db).get('install-79-replayed')).toBeUndefined();

    // The same body under another event name is another delivery.
    const other = webhook('install-79-as-ping', installation, 'ping');
    expect(await (await post(tower, other.body, other.headers)).json()).toMatchObject({
      status: 'stored',
    });
  });

  it("reports an unreachable database as unhealthy, without the driver's error text", async () => {
    const closed = await backend.open();
    const unhealthy = await createTower({
      config: inProcessConfig(undefined),
      logger,
      database: closed,
    });
    await closed.close();
    const response = await unhealthy.app.request('/healthz');
    expect(response.status).toBe(503);
    // The driver's message (hosts, ports, paths) stays in the log: anyone may ask /healthz.
    expect(await response.json()).toEqual({
      status: 'error',
      version,
      database: {
        kind: backend.name,
        status: 'unreachable',
        error: 'The database did not answer; the server log has the details',
      },
    });
    await closed.dispose().catch(() => undefined);
  });
});

describe('without a GitHub App', () => {
  it('refuses webhooks, saying what to configure, and answers unknown routes with 404', async () => {
    const [backend] = backends();
    const database = await backend!.open();
    try {
      const tower = await createTower({ config: inProcessConfig(undefined), logger, database });
      expect(tower.processor).toBeUndefined();
      const { body, headers } = webhook('x', installationCreatedPayload(1, []));
      const response = await post(tower, body, headers);
      expect(response.status).toBe(503);
      expect(await messageOf(response)).toContain('TOWER_APP_ID');
      expect(await createDeliveryQueries(database.db).count()).toBe(0);
      const missing = await tower.app.request('/nope');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({
        error: 'not_found',
        message: 'No route for GET /nope',
      });
    } finally {
      await database.dispose();
    }
  });
});
