import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per Tower instance, so that tests and replicas in one process stay apart. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tower_process_' });
  return {
    registry,
    webhooksReceived: new Counter({
      name: 'tower_webhook_deliveries_received_total',
      help: 'Webhook deliveries received, by event and outcome (stored, duplicate, rejected).',
      labelNames: ['event', 'outcome'] as const,
      registers: [registry],
    }),
    webhooksProcessed: new Counter({
      name: 'tower_webhook_deliveries_processed_total',
      help: 'Webhook deliveries processed from the database, by event and outcome (done, retry, failed).',
      labelNames: ['event', 'outcome'] as const,
      registers: [registry],
    }),
    httpRequestDuration: new Histogram({
      name: 'tower_http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
