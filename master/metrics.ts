import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The master's Prometheus metrics, one registry per master (no globals), served at GET /metrics. */
export interface MasterMetrics {
  readonly registry: Registry;
  /** Alerts committed to Postgres (duplicates ignored are not counted), by pair. */
  readonly alertsIngested: Counter<'pair'>;
  /** Redelivered alerts whose id was already stored. */
  readonly alertsDuplicate: Counter;
  /** Messages sent to the dead-letter stream, by source (stream/pubsub). */
  readonly deadLettered: Counter<'source'>;
  /** Notification delivery outcomes, by channel and status (sent, retry, failed). */
  readonly notifications: Counter<'channel' | 'status'>;
  /** Entries in the alert streams not yet delivered to this consumer group (XINFO GROUPS lag), by pair. */
  readonly streamLag: Gauge<'pair'>;
  /** Rows in one ingest transaction. */
  readonly ingestBatchSize: Histogram;
  /** Ingest transactions that failed (Postgres unavailable); their alerts stay pending in Redis and are retried. */
  readonly ingestFailures: Counter;
  /** HTTP request durations, by method, route and status code. */
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Alert reads served by the primary although a read replica is configured, by reason (unreachable, lagging, conflict). */
  readonly replicaFallbacks: Counter<'reason'>;
  /** The read replica's lag at its last measurement (-1: unknown or down). */
  readonly replicaLagSeconds: Gauge;
  /** WAL bytes the read replica had not replayed at its last measurement (-1: unknown or down). */
  readonly replicaLagBytes: Gauge;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): MasterMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tickwatch_master_' });
  return {
    registry,
    alertsIngested: new Counter({ name: 'tickwatch_alerts_ingested_total', help: 'Alerts stored in Postgres', labelNames: ['pair'], registers: [registry] }),
    alertsDuplicate: new Counter({ name: 'tickwatch_alerts_duplicate_total', help: 'Redelivered alerts ignored because their id was already stored', registers: [registry] }),
    deadLettered: new Counter({ name: 'tickwatch_alerts_dead_lettered_total', help: 'Messages moved to the dead-letter stream', labelNames: ['source'], registers: [registry] }),
    notifications: new Counter({ name: 'tickwatch_notifications_total', help: 'Notification delivery outcomes', labelNames: ['channel', 'status'], registers: [registry] }),
    streamLag: new Gauge({ name: 'tickwatch_stream_lag', help: 'Alert stream entries not yet read by the master group', labelNames: ['pair'], registers: [registry] }),
    ingestBatchSize: new Histogram({ name: 'tickwatch_ingest_batch_size', help: 'Alerts per ingest transaction', buckets: [1, 10, 100, 500, 1000, 5000], registers: [registry] }),
    ingestFailures: new Counter({ name: 'tickwatch_ingest_failures_total', help: 'Ingest transactions that failed and will be retried (the alerts stay pending)', registers: [registry] }),
    replicaFallbacks: new Counter({
      name: 'tickwatch_replica_fallback_reads_total',
      help: 'Alert reads served by the primary because the read replica was unreachable, lagging or in conflict with recovery',
      labelNames: ['reason'],
      registers: [registry],
    }),
    replicaLagSeconds: new Gauge({ name: 'tickwatch_replica_lag_seconds', help: 'Read replica replay lag at its last measurement (-1: unknown or down)', registers: [registry] }),
    replicaLagBytes: new Gauge({ name: 'tickwatch_replica_lag_bytes', help: 'WAL bytes not yet replayed by the read replica at its last measurement (-1: unknown or down)', registers: [registry] }),
    httpDuration: new Histogram({
      name: 'tickwatch_http_request_duration_seconds',
      help: 'HTTP request durations',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
  };
}
