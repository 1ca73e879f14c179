import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every label value comes from a fixed set: a label taken from a request
 * (an unsigned `X-GitHub-Event`, a path, a method) would let anyone grow
 * `/metrics` without bound, since each new value is a new series kept for good.
 */

/** The webhook events Tower subscribes to; any other name is counted as `other`. */
export const webhookEventLabels = [
  'check_run',
  'check_suite',
  'installation',
  'installation_repositories',
  'issue_comment',
  'ping',
  'pull_request',
  'pull_request_review',
  'push',
  'other',
] as const;
export type WebhookEventLabel = (typeof webhookEventLabels)[number];

const httpMethodLabels = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'other',
] as const;
export type HttpMethodLabel = (typeof httpMethodLabels)[number];

export function webhookEventLabel(event: string | undefined): WebhookEventLabel {
  return webhookEventLabels.find((known) => known === event) ?? 'other';
}

export function httpMethodLabel(method: string): HttpMethodLabel {
  return httpMethodLabels.find((known) => known === method) ?? 'other';
}

/** An HTTP status as a label: a three-digit code, or `other` for anything else. */
function httpStatusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'other';
}

/** One registry per Tower instance, so that tests and replicas in one process stay apart. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tower_process_' });
  const received = new Counter({
    name: 'tower_webhook_deliveries_received_total',
    help: 'Webhook deliveries received, by event (known events, else other) and outcome (stored, duplicate, rejected).',
    labelNames: ['event', 'outcome'] as const,
    registers: [registry],
  });
  const processed = new Counter({
    name: 'tower_webhook_deliveries_processed_total',
    help: 'Webhook deliveries processed from the database, by event (known events, else other) and outcome (done, retry, failed).',
    labelNames: ['event', 'outcome'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'tower_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    webhooksReceived: {
      inc(labels: { event: string | undefined; outcome: 'stored' | 'duplicate' | 'rejected' }) {
        received.inc({ event: webhookEventLabel(labels.event), outcome: labels.outcome });
      },
    },
    webhooksProcessed: {
      inc(labels: { event: string; outcome: 'done' | 'retry' | 'failed' }) {
        processed.inc({ event: webhookEventLabel(labels.event), outcome: labels.outcome });
      },
    },
    httpRequestDuration: {
      /** `route` must be the matched route's pattern (Hono's `routePath`), never the raw path. */
      observe(labels: { method: string; route: string; status: number }, seconds: number) {
        requestDuration.observe(
          {
            method: httpMethodLabel(labels.method),
            route: labels.route,
            status: httpStatusLabel(labels.status),
          },
          seconds,
        );
      },
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
