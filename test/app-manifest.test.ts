import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TOWER_APP_EVENTS } from '../src/sandbox/simulator.js';

/**
 * GitHub's manifest flow, as documented: the parameters it takes, the
 * permission names and levels, and the events an app may subscribe to with
 * the permission each needs.
 */
const permissionLevel = z.enum(['read', 'write']);
const Manifest = z.strictObject({
  name: z.string().min(1).max(34),
  url: z.url({ protocol: /^https?$/ }),
  description: z.string().optional(),
  hook_attributes: z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    active: z.boolean().optional(),
  }),
  redirect_url: z.url().optional(),
  callback_urls: z.array(z.url()).max(10).optional(),
  setup_url: z.url().optional(),
  public: z.boolean().optional(),
  default_events: z.array(z.string()),
  default_permissions: z.partialRecord(
    z.enum([
      'actions',
      'administration',
      'checks',
      'contents',
      'deployments',
      'issues',
      'members',
      'metadata',
      'pages',
      'pull_requests',
      'statuses',
    ]),
    permissionLevel,
  ),
  request_oauth_on_install: z.boolean().optional(),
  setup_on_update: z.boolean().optional(),
});

/** Subscribable events and the permission (any of) that each requires. */
const eventPermissions: Record<string, string[]> = {
  push: ['contents'],
  pull_request: ['pull_requests'],
  pull_request_review: ['pull_requests'],
  issue_comment: ['issues', 'pull_requests'],
  check_run: ['checks'],
  check_suite: ['checks'],
};
/** Sent to every app; GitHub refuses a manifest that subscribes to them. */
const alwaysDelivered = ['installation', 'installation_repositories'];

describe('app.yml', async () => {
  const manifest = Manifest.parse(
    parse(await readFile(new URL('../app.yml', import.meta.url), 'utf8')),
  );

  it('asks for the permissions Tower needs', () => {
    expect(manifest.default_permissions).toEqual({
      checks: 'write',
      contents: 'write',
      pull_requests: 'write',
      issues: 'write',
      metadata: 'read',
      members: 'read',
    });
  });

  it('receives every event Tower handles, subscribing only to those that take a subscription', () => {
    const needed = [
      'push',
      'pull_request',
      'pull_request_review',
      'issue_comment',
      'check_run',
      'check_suite',
      ...alwaysDelivered,
    ];
    const received = [...manifest.default_events, ...alwaysDelivered];
    expect(received.sort()).toEqual([...needed].sort());
    for (const event of alwaysDelivered) expect(manifest.default_events).not.toContain(event);
  });

  it("is what the simulator's Tower app subscribes to", () => {
    expect([...manifest.default_events].sort()).toEqual([...TOWER_APP_EVENTS].sort());
  });

  it('holds the permission each subscribed event needs', () => {
    for (const event of manifest.default_events) {
      const permissions = eventPermissions[event];
      expect(permissions, `${event} is not an event an app can subscribe to`).toBeDefined();
      expect(
        permissions!.some((permission) => permission in manifest.default_permissions),
        `${event} needs one of ${permissions!.join(', ')}`,
      ).toBe(true);
    }
  });

  it('sends webhooks to the path Tower serves them on', () => {
    expect(new URL(manifest.hook_attributes.url).pathname).toBe('/api/github/webhooks');
  });
});
