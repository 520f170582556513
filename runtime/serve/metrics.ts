// The gateway's Prometheus metrics (prom-client), on a registry of its own so that several
// gateways (or tests) in one process do not share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly messages: Counter<'pipeline'>;
  readonly otherPartition: Counter<'pipeline'>;
  readonly duplicates: Counter<'pipeline'>;
  readonly decodeErrors: Counter<'pipeline'>;
  readonly deadLetters: Counter<'pipeline' | 'code'>;
  readonly windows: Counter<'pipeline'>;
  readonly windowGaps: Counter<'pipeline'>;
  readonly inferences: Counter<'pipeline' | 'model' | 'variant'>;
  readonly batchSize: Histogram<'pipeline'>;
  readonly inferenceSeconds: Histogram<'pipeline'>;
  readonly queueDepth: Gauge<'pipeline'>;
  readonly shedWindows: Counter<'pipeline'>;
  readonly alerts: Counter<'pipeline'>;
  readonly dbWriteSeconds: Histogram;
  readonly outboxDepth: Gauge;
  readonly journalDepth: Gauge;
  readonly published: Counter;
  readonly publishRefused: Counter<'reason_code'>;
  readonly replaySkipped: Counter<'pipeline'>;
  readonly brokerConnected: Gauge;
  readonly devices: Gauge<'pipeline'>;
  readonly evictedDevices: Counter<'pipeline'>;
  readonly internalErrors: Counter<'pipeline' | 'stage'>;
  readonly logCommits: Gauge;
  readonly commitRetries: Gauge;
  readonly commitsFailing: Gauge;
  /** Reads the log's commit counters when the metrics are scraped. */
  commits: (() => { commits: number; retries: number; failingSinceMs: number | null } | undefined) | undefined;
  /** Reads the log's depths when the metrics are scraped (not on every commit). */
  depths: (() => { outbox: number; journal: number } | undefined) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    // Per pipeline, not per topic: a topic per device would make a series per device, without bound.
    this.messages = new Counter({ name: 'edge_infer_messages_total', help: 'MQTT messages received, per pipeline', labelNames: ['pipeline'], registers: r });
    // Apart from messages: a partitioned gateway receives every device's messages and keeps its own.
    this.otherPartition = new Counter({ name: 'edge_infer_other_partition_messages_total', help: 'MQTT messages of devices another gateway owns (device partition): acknowledged and dropped on arrival, per pipeline', labelNames: ['pipeline'], registers: r });
    this.duplicates = new Counter({ name: 'edge_infer_duplicate_messages_total', help: 'Redelivered messages recognised and not processed twice', labelNames: ['pipeline'], registers: r });
    this.decodeErrors = new Counter({ name: 'edge_infer_decode_errors_total', help: 'Payloads that could not be decoded', labelNames: ['pipeline'], registers: r });
    this.deadLetters = new Counter({ name: 'edge_infer_dead_letters_total', help: 'Inputs recorded as dead letters, by error code', labelNames: ['pipeline', 'code'], registers: r });
    this.windows = new Counter({ name: 'edge_infer_windows_total', help: 'Complete windows handed to inference', labelNames: ['pipeline'], registers: r });
    this.windowGaps = new Counter({ name: 'edge_infer_window_gaps_total', help: 'Windows restarted because samples were missing', labelNames: ['pipeline'], registers: r });
    this.inferences = new Counter({ name: 'edge_infer_inferences_total', help: 'Windows the model ran on', labelNames: ['pipeline', 'model', 'variant'], registers: r });
    this.batchSize = new Histogram({ name: 'edge_infer_batch_size', help: 'Windows per inference run', labelNames: ['pipeline'], buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: r });
    this.inferenceSeconds = new Histogram({ name: 'edge_infer_inference_seconds', help: 'Duration of one inference run', labelNames: ['pipeline'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1], registers: r });
    this.queueDepth = new Gauge({ name: 'edge_infer_queue_depth', help: 'Windows waiting for inference', labelNames: ['pipeline'], registers: r });
    this.shedWindows = new Counter({ name: 'edge_infer_shed_windows_total', help: 'Windows dropped because inference could not keep up (recorded as dead letters)', labelNames: ['pipeline'], registers: r });
    this.alerts = new Counter({ name: 'edge_infer_alerts_total', help: 'Alerts raised', labelNames: ['pipeline'], registers: r });
    this.dbWriteSeconds = new Histogram({ name: 'edge_infer_db_write_seconds', help: 'Duration of one database commit', buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5], registers: r });
    const depth = (which: 'outbox' | 'journal') => (gauge: Gauge): void => {
      const d = this.depths?.();
      if (d) gauge.set(d[which]);
    };
    const outbox = depth('outbox');
    const journal = depth('journal');
    this.outboxDepth = new Gauge({ name: 'edge_infer_outbox_depth', help: 'Results waiting for the broker to acknowledge them', registers: r, collect() { outbox(this); } });
    this.journalDepth = new Gauge({ name: 'edge_infer_journal_depth', help: 'Messages journaled and not yet fully processed (their windows not all logged)', registers: r, collect() { journal(this); } });
    this.published = new Counter({ name: 'edge_infer_published_total', help: 'Result and alert messages the broker acknowledged', registers: r });
    this.publishRefused = new Counter({ name: 'edge_infer_publish_refused_total', help: 'Result and alert messages the broker refused with a reason code (kept as dead letters)', labelNames: ['reason_code'], registers: r });
    this.replaySkipped = new Counter({ name: 'edge_infer_replay_skipped_windows_total', help: 'Windows a replay after a restart did not log again: the log had them before', labelNames: ['pipeline'], registers: r });
    this.brokerConnected = new Gauge({ name: 'edge_infer_broker_connected', help: '1 while connected to the broker', registers: r });
    this.devices = new Gauge({ name: 'edge_infer_devices', help: 'Devices a pipeline follows now (each keeps a window)', labelNames: ['pipeline'], registers: r });
    this.evictedDevices = new Counter({ name: 'edge_infer_evicted_devices_total', help: 'Devices let go after staying silent past the idle bound (their partial windows dropped)', labelNames: ['pipeline'], registers: r });
    this.internalErrors = new Counter({ name: 'edge_infer_internal_errors_total', help: 'Unexpected errors caught inside a pipeline stage (the input became a dead letter; the gateway kept running)', labelNames: ['pipeline', 'stage'], registers: r });
    const commits = (g: Gauge, pick: (c: { commits: number; retries: number; failingSinceMs: number | null }) => number): void => {
      const c = this.commits?.();
      if (c) g.set(pick(c));
    };
    // What an SD card feels: every commit writes the pages it touched again (the 'sd' profile makes one a second).
    this.logCommits = new Gauge({ name: 'edge_infer_log_commits', help: 'Transactions the log committed since start (result batches and journal group commits)', registers: r, collect() { commits(this, (c) => c.commits); } });
    this.commitRetries = new Gauge({ name: 'edge_infer_commit_retries', help: 'Batches the log tried again after their transaction failed as a whole (disk full, I/O error, lock held), since start', registers: r, collect() { commits(this, (c) => c.retries); } });
    this.commitsFailing = new Gauge({ name: 'edge_infer_commit_failing_seconds', help: 'How long commits have been failing (0 while they succeed); nothing is lost meanwhile, but nothing is logged', registers: r, collect() { commits(this, (c) => (c.failingSinceMs === null ? 0 : (Date.now() - c.failingSinceMs) / 1000)); } });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'edge_infer_' });
  }

  /** The metrics in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
