import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryQueries } from '../src/db/deliveries.js';
import { createInstallationQueries } from '../src/db/installations.js';
import { createLogger } from '../src/lib/logger.js';
import { version } from '../src/lib/version.js';
import { createTower, type Tower } from '../src/main.js';
import { inProcessConfig } from './support/config.js';
import { backends, type TestDatabase } from './support/databases.js';
import { generateAppKey, installationCreatedPayload, sign } from './support/github-app.js';

const secret = 'webhook-secret';
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
  beforeAll(async () => {
    database = await backend.open();
    tower = await createTower({
      config: inProcessConfig({ appId: 1, privateKey: generateAppKey(), webhookSecret: secret }),
      logger,
      database,
    });
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
    const response = await tower.app.request('/metrics');
    expect(response.status).toBe(200);
    const text = await response.text();
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

  it('reports an unreachable database as unhealthy', async () => {
    const closed = await backend.open();
    const unhealthy = await createTower({
      config: inProcessConfig(undefined),
      logger,
      database: closed,
    });
    await closed.close();
    const response = await unhealthy.app.request('/healthz');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: 'error',
      database: { kind: backend.name, status: 'unreachable' },
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
