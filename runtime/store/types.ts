// What the pipeline hands the store and what the dashboard gets back.

export type SyncMode = 'full' | 'normal' | 'off';

export interface StoreOptions {
  /** Database file (created with its folder if missing). */
  path: string;
  /** How hard a commit is pushed to the disk: 'full' survives power loss, 'normal' (default) a process crash, 'off' a process crash only and risks the file on power loss. See README. */
  sync?: SyncMode;
  /** A batch commits when it holds this many rows (all tables, inbound keys included); default 1000. */
  batchRows?: number;
  /** ...or when its oldest unit has waited this long, in ms; default 20. */
  batchMs?: number;
  /**
   * 'always' (default): every message is journaled in a group commit of its own before it may be
   * acknowledged. 'when-needed': messages are processed at once and their acknowledgement waits
   * for the batch commit that logs what they fed (the broker holds them meanwhile); only a message
   * still unfinished after a whole batch interval is journaled, in that batch's transaction. One
   * commit per batch: what an SD card needs.
   */
  journal?: JournalMode;
  /** Retention by age and by size; nothing is deleted unless one of the two is set. */
  retention?: RetentionOptions;
  /** Most messages kept in the outbox; beyond it the oldest are dropped and counted; default 1,000,000. */
  outboxLimit?: number;
  /** Called when background retention fails; default process.emitWarning. */
  onError?: (err: Error) => void;
}

export type JournalMode = 'always' | 'when-needed';

export interface RetentionOptions {
  /** Rows older than this many days are deleted (outbox excepted). */
  maxAgeDays?: number;
  /** The database file is kept under this many bytes, deleting the oldest rows first. */
  maxBytes?: number;
  /**
   * Inbound keys (redelivery recognition) older than this many seconds are deleted; default: as
   * maxAgeDays. A broker redelivers only within its session, so the session expiry is enough.
   */
  inboundMaxAgeS?: number;
  /** Minute rollups (for charts) older than this many days are deleted; default 90; never before the raw rows' maxAgeDays. */
  minuteRollupDays?: number;
  /** Hour rollups older than this many days are deleted; default 365; never before the raw rows' maxAgeDays. */
  hourRollupDays?: number;
  /** How often retention runs in the background, in ms; default 60,000; 0 runs it only on demand. */
  everyMs?: number;
}

export interface InboundRef {
  topic: string;
  /** Stable identity of an inbound message for deduplication after redelivery: a hash of topic+payload, or the publisher's message number. */
  key: string;
  receivedMs: number;
}

export interface ResultRecord {
  /** Data time: the end of the window, by the device's clock (or the arrival of readings that carry no time). */
  timeMs: number;
  /** When the gateway made the result (wall clock); default: when it is committed. */
  processedMs?: number;
  device: string;
  model: string;
  variant: string;
  score: number;
  label: string | null;
  anomaly: boolean;
  outputs: Record<string, number[]> | number[];
  latencyMs: number;
  windowStartMs: number;
  windowEndMs: number;
  messageKeys: string[];
  /** RMS of the window's main channel (its first), in the channel's unit; for the dashboard's drill-down. */
  rms?: number | null;
  /** The device's own variant that made it (its ONNX sha256); unset: the pipeline's shared variant. */
  modelSha256?: string | null;
}

export interface AlertRecord {
  /** Data time: the end of the window that changed the device's alert state. */
  timeMs: number;
  /** When the gateway raised it (wall clock); default: when it is committed. */
  processedMs?: number;
  device: string;
  model: string;
  variant: string;
  kind: string;
  label: string | null;
  score: number;
  threshold: number | null;
  message: string;
}

export interface DeadLetterRecord {
  timeMs: number;
  topic: string;
  device: string | null;
  reason: string;
  code: string;
  /** Raw input, stored as a BLOB and cut at DEAD_LETTER_MAX_BYTES. */
  payload: Uint8Array;
}

export interface OutboxMessage {
  topic: string;
  payload: Uint8Array | string;
  qos: 0 | 1 | 2;
  retain?: boolean;
}

export interface WindowRecord {
  timeMs: number;
  device: string;
  model: string;
  /** The model input features of one window, kept to calibrate quantized models on the gateway's own data. */
  features: Float32Array;
  /** Dims of `features`; their product must equal features.length. */
  dims: number[];
}

/** A message a pipeline took, journaled before it is acknowledged to the broker. */
export interface JournalEntry {
  pipeline: string;
  key: string;
  topic: string;
  payload: Uint8Array;
  receivedMs: number;
}

export interface JournalRow extends JournalEntry {
  id: number;
  /** Replays that started on the row and did not finish it (the process stopped meanwhile). */
  attempts: number;
}

/** An inbound QoS 2 PUBLISH held from its PUBREC until it is journaled (mqtt.js's incoming store). */
export interface HeldPublish {
  messageId: number;
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  /** MQTT 5 properties of the PUBLISH. */
  properties?: Record<string, unknown>;
}

/** A journaled message whose every window is committed: its journal row goes. */
export interface ConsumedRef {
  pipeline: string;
  key: string;
}

/** The start of the last window committed for a device in a pipeline. */
export interface CursorRecord {
  pipeline: string;
  device: string;
  lastWindowStartMs: number;
  /** The message keys of that window: two windows of untimed readings can start in the same ms. */
  lastWindowKeys?: string[];
}

/** Where a device's windows stood when the log last committed one. */
export interface DeviceCursor {
  startMs: number;
  /** Message keys of that window (null in logs from before they were kept). */
  keys: string[] | null;
}

/** A device's alert state in a pipeline after a unit's windows: opaque to the log; null when none is held. */
export interface AlertStateRecord {
  pipeline: string;
  device: string;
  state: object | null;
}

/** Everything one batch of pipeline work produced; committed all or nothing. */
export interface CommitUnit {
  inbound?: InboundRef[];
  results?: ResultRecord[];
  alerts?: AlertRecord[];
  deadLetters?: DeadLetterRecord[];
  outbox?: OutboxMessage[];
  windows?: WindowRecord[];
  consumed?: ConsumedRef[];
  cursors?: CursorRecord[];
  alertStates?: AlertStateRecord[];
}

export interface ResultRow extends ResultRecord {
  id: number;
}

export interface AlertRow extends AlertRecord {
  id: number;
  /** Who acknowledged it and when (wall time, ms since the epoch); null while nobody has. */
  ackedBy: string | null;
  ackedMs: number | null;
  /** Who cleared it from the active list and when (wall time); null while nobody has. */
  clearedBy: string | null;
  clearedMs: number | null;
}

export interface DeadLetterRow extends Omit<DeadLetterRecord, 'payload'> {
  id: number;
  /** The stored payload: the first DEAD_LETTER_MAX_BYTES bytes of the input. */
  payload: Uint8Array;
  /** Size of the input before it was cut. */
  payloadBytes: number;
  /** True when the payload was cut. */
  truncated: boolean;
}

export interface OutboxEntry extends OutboxMessage {
  id: number;
  retain: boolean;
}

export interface WindowRow {
  timeMs: number;
  device: string;
  features: Float32Array;
  dims: number[];
}

export interface SeriesPoint {
  timeMs: number;
  score: number;
  label: string | null;
}

/** What chart() draws: the model's score, or the RMS of the window's main channel. */
export type ChartField = 'score' | 'rms';

/** Where chart() read a range from: the raw results, or the minute or hour rollups. */
export type SeriesSource = 'raw' | 'minute' | 'hour';

/** One point of chart(): a raw result (count 1), or a bucket of results with their min and max. */
export interface ChartPoint {
  /** The result's time, or the start of the bucket. */
  timeMs: number;
  /** The highest score (as max), so callers that read a single line see spikes. */
  score: number;
  /** The label of the highest score (a classifier's class shown); first logged on a tie. */
  label: string | null;
  min: number;
  max: number;
  mean: number;
  /** Results in the bucket. */
  count: number;
  /** Results flagged anomalous in the bucket. */
  anomalies: number;
}

export interface SeriesResult {
  points: ChartPoint[];
  source: SeriesSource;
  /** Width of each bucket in ms; 0 when the points are raw results. */
  bucketMs: number;
}

export interface AggregateRow {
  bucketStartMs: number;
  device: string;
  model: string;
  count: number;
  meanScore: number;
  maxScore: number;
  anomalies: number;
}

/** One model variant's throughput and latency, from modelStats(). */
export interface ModelStatsRow {
  model: string;
  variant: string;
  /** Results logged with processedMs ≥ sinceMs. */
  windows: number;
  /** Median and 99th percentile of latencyMs over the newest results (at most MODEL_STATS_LATENCY_RESULTS), nearest rank; null without results. */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

/** How one model variant agrees with the reference variant on the same windows, from agreement(). */
export interface AgreementRow {
  model: string;
  variant: string;
  /** The variant it is compared with ('fp32' unless told). */
  reference: string;
  /** Windows logged by both variants (paired by device, model and message keys). */
  windows: number;
  /** Of those, how many gave the same label (models without labels: the same anomaly flag). */
  agree: number;
}

export interface StoreCounts {
  results: number;
  alerts: number;
  deadLetters: number;
  outbox: number;
  inbound: number;
  windows: number;
}

export interface StoreStats {
  /** Transactions committed. */
  commits: number;
  /** Rows committed in total, all tables. */
  rows: number;
  /** Duration of the last commit's transaction, in ms. */
  lastCommitMs: number;
  /** Rows in the last commit. */
  lastCommitRows: number;
  /** Units rejected (their promise rejected, nothing of them written). */
  failedUnits: number;
  /** Outbox messages dropped because the outbox was over outboxLimit. */
  droppedOutbox: number;
  /** Batches tried again after their transaction failed as a whole. */
  retries: number;
  /** Since when (epoch ms) commits have been failing; null while they succeed. */
  failingSinceMs: number | null;
}
