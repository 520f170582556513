// The schema, as numbered migrations. PRAGMA user_version holds the number of the last one
// applied; each migration runs in its own transaction together with the version bump, so a
// failed migration leaves the file at the version before it.
import type Database from 'better-sqlite3';
import { StoreError, messageOf } from './errors';

export interface Migration {
  version: number;
  name: string;
  up(db: Database.Database): void;
}

/** Times are ms since the epoch. Outputs and message keys are JSON. */
const V1 = `
CREATE TABLE results (
  id              INTEGER PRIMARY KEY,
  time_ms         INTEGER NOT NULL,
  device          TEXT    NOT NULL,
  model           TEXT    NOT NULL,
  variant         TEXT    NOT NULL,
  score           REAL    NOT NULL,
  label           TEXT,
  anomaly         INTEGER NOT NULL,
  outputs         TEXT    NOT NULL,
  latency_ms      REAL    NOT NULL,
  window_start_ms INTEGER NOT NULL,
  window_end_ms   INTEGER NOT NULL,
  message_keys    TEXT    NOT NULL
);
-- The only index on results: a second one on time_ms alone costs a third of the insert rate.
-- Queries over all devices walk result_streams and use this index pair by pair.
CREATE INDEX results_device_model_time ON results (device, model, time_ms);

-- The (device, model) pairs that have results, so latestPerDevice(), aggregates() and retention
-- reach every pair's rows through the index above instead of scanning the table.
CREATE TABLE result_streams (
  device TEXT NOT NULL,
  model  TEXT NOT NULL,
  PRIMARY KEY (device, model)
) WITHOUT ROWID;

CREATE TABLE alerts (
  id        INTEGER PRIMARY KEY,
  time_ms   INTEGER NOT NULL,
  device    TEXT    NOT NULL,
  model     TEXT    NOT NULL,
  variant   TEXT    NOT NULL,
  kind      TEXT    NOT NULL,
  label     TEXT,
  score     REAL    NOT NULL,
  threshold REAL,
  message   TEXT    NOT NULL
);
CREATE INDEX alerts_time ON alerts (time_ms);
CREATE INDEX alerts_device_time ON alerts (device, time_ms);

CREATE TABLE dead_letters (
  id            INTEGER PRIMARY KEY,
  time_ms       INTEGER NOT NULL,
  topic         TEXT    NOT NULL,
  device        TEXT,
  reason        TEXT    NOT NULL,
  code          TEXT    NOT NULL,
  payload       BLOB    NOT NULL,
  payload_bytes INTEGER NOT NULL,
  truncated     INTEGER NOT NULL
);
CREATE INDEX dead_letters_time ON dead_letters (time_ms);

-- AUTOINCREMENT: an id is never handed out twice, even after the outbox empties, so a late
-- PUBACK for an old id cannot remove a newer message.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  topic      TEXT    NOT NULL,
  payload    BLOB    NOT NULL,
  qos        INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
  retain     INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);

CREATE TABLE inbound (
  key         TEXT    PRIMARY KEY,
  topic       TEXT    NOT NULL,
  received_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX inbound_received ON inbound (received_ms);

CREATE TABLE windows (
  id       INTEGER PRIMARY KEY,
  time_ms  INTEGER NOT NULL,
  device   TEXT    NOT NULL,
  model    TEXT    NOT NULL,
  dims     TEXT    NOT NULL,
  features BLOB    NOT NULL
);
CREATE INDEX windows_model_time ON windows (model, time_ms);
CREATE INDEX windows_time ON windows (time_ms);
`;

/**
 * The inbound journal: each message a pipeline took, written (and the message acknowledged to the
 * broker) before it is processed, and deleted in the transaction that commits the last window it
 * fed. After a crash the pending rows are replayed, so nothing acknowledged is lost. Cursors hold
 * each device's last committed window start, so a replay does not log a window twice.
 */
const V2 = `
CREATE TABLE journal (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline    TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  topic       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,
  received_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX journal_pipeline_key ON journal (pipeline, key);

CREATE TABLE cursors (
  pipeline             TEXT NOT NULL,
  device               TEXT NOT NULL,
  last_window_start_ms REAL NOT NULL,
  PRIMARY KEY (pipeline, device)
) WITHOUT ROWID;
`;

/**
 * Inbound QoS 2 messages between their PUBREC and the journal (mqtt.js's incoming store, kept in
 * this file): after a crash the broker sends PUBREL again and the message is found here.
 */
const V3 = `
CREATE TABLE mqtt_incoming (
  client_id   TEXT    NOT NULL,
  message_id  INTEGER NOT NULL,
  topic       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,
  packet      TEXT    NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (client_id, message_id)
) WITHOUT ROWID;
`;

/**
 * How many times a replay has started on a journal row without finishing it. A message that
 * brings the process down (a crash in the model runtime, memory) is tried again at every start;
 * past a bound it becomes a dead letter instead of a crash loop.
 */
const V4 = `
ALTER TABLE journal ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
`;

/**
 * Which inbound MQTT message each packet id carries, so a redelivery is told by the protocol
 * (the session, the packet id, the DUP flag) and not by its bytes alone (runtime/stream/identity.ts):
 * the broker's session epoch per client, bumped whenever the broker has no session for it, and per
 * packet id the message last received under it whose acknowledgement the broker may not have read.
 */
const V5 = `
CREATE TABLE mqtt_sessions (
  client_id TEXT    PRIMARY KEY,
  epoch     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE mqtt_deliveries (
  client_id   TEXT    NOT NULL,
  message_id  INTEGER NOT NULL,
  key         TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (client_id, message_id)
) WITHOUT ROWID;
`;

/**
 * The message keys of each device's last logged window, beside its start: readings without a
 * timestamp are dated by their arrival in ms, so two windows can start in the same ms, and only
 * their messages tell the one the log has from the one a replay must still log.
 */
const V6 = `
ALTER TABLE cursors ADD COLUMN last_window_keys TEXT;
`;

/**
 * Data time: a result's time_ms becomes its window's end (the device's clock, so a backlog
 * processed in seconds charts at the times it was measured), and the time it was processed is
 * kept beside it; alerts likewise. Rows logged before keep their processing time in both (the
 * window an old alert came from is not known). Each device's alert state (windows in a row, a
 * raised alert, its cooldown) is kept with the commits, so a restart that replays the journal
 * raises the same alerts as a run without the restart.
 */
const V7 = `
ALTER TABLE results ADD COLUMN processed_ms INTEGER;
UPDATE results SET processed_ms = time_ms, time_ms = window_end_ms;
ALTER TABLE alerts ADD COLUMN processed_ms INTEGER;
UPDATE alerts SET processed_ms = time_ms;

CREATE TABLE alert_states (
  pipeline TEXT NOT NULL,
  device   TEXT NOT NULL,
  state    TEXT NOT NULL,
  PRIMARY KEY (pipeline, device)
) WITHOUT ROWID;
`;

/**
 * What the broker granted at the gateway's last SUBSCRIBE, per client and filter: a restart
 * that finds its session at the broker subscribes to nothing, and /health still says what the
 * session holds. `granted` is the SUBACK's code: the QoS granted, or 128 and up when refused.
 */
const V8 = `
CREATE TABLE mqtt_subscriptions (
  client_id  TEXT    NOT NULL,
  filter     TEXT    NOT NULL,
  asked_qos  INTEGER NOT NULL,
  granted    INTEGER NOT NULL,
  granted_ms INTEGER NOT NULL,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
`;

/**
 * Rollups beside the raw results, so a chart of days or weeks reads thousands of rows instead of
 * millions: per (device, model) and minute, and per hour, the count, the sum, min and max of the
 * scores, the label of the highest score (first committed on a tie) and the anomalies. The writer
 * keeps them in the transaction that commits the results; retention keeps them longer than the
 * raw rows. The bucket is the start of its minute or hour in data time (floor, ms since the epoch).
 * This migration fills both from the results already logged: MAX() as the only min/max aggregate
 * lets SQLite take the label from the row holding the maximum; the minimum follows per row.
 */
const ROLLUP_COLUMNS = `
  device    TEXT    NOT NULL,
  model     TEXT    NOT NULL,
  bucket_ms INTEGER NOT NULL,
  count     INTEGER NOT NULL,
  sum       REAL    NOT NULL,
  min       REAL    NOT NULL,
  max       REAL    NOT NULL,
  max_label TEXT,
  anomalies INTEGER NOT NULL,
  PRIMARY KEY (device, model, bucket_ms)`;
const floorTo = (unit: number, t: string): string => `((CAST(${t} AS INTEGER) - ((CAST(${t} AS INTEGER) % ${unit}) + ${unit}) % ${unit}))`;
const V9 = `
CREATE TABLE result_minutes (${ROLLUP_COLUMNS}
) WITHOUT ROWID;
CREATE INDEX result_minutes_time ON result_minutes (bucket_ms);
CREATE TABLE result_hours (${ROLLUP_COLUMNS}
) WITHOUT ROWID;
CREATE INDEX result_hours_time ON result_hours (bucket_ms);

INSERT INTO result_minutes (device, model, bucket_ms, count, sum, min, max, max_label, anomalies)
  SELECT device, model, ${floorTo(60_000, 'time_ms')} AS b, COUNT(*), SUM(score), 0, MAX(score), label, SUM(anomaly)
  FROM results GROUP BY device, model, b;
UPDATE result_minutes SET min = (SELECT MIN(score) FROM results r
  WHERE r.device = result_minutes.device AND r.model = result_minutes.model AND r.time_ms >= result_minutes.bucket_ms AND r.time_ms < result_minutes.bucket_ms + 60000);
INSERT INTO result_hours (device, model, bucket_ms, count, sum, min, max, max_label, anomalies)
  SELECT device, model, ${floorTo(3_600_000, 'bucket_ms')} AS b, SUM(count), SUM(sum), 0, MAX(max), max_label, SUM(anomalies)
  FROM result_minutes GROUP BY device, model, b;
UPDATE result_hours SET min = (SELECT MIN(min) FROM result_minutes m
  WHERE m.device = result_hours.device AND m.model = result_hours.model AND m.bucket_ms >= result_hours.bucket_ms AND m.bucket_ms < result_hours.bucket_ms + 3600000);
`;

/**
 * What the dashboard shows beside the scores: who acknowledged an alert and when, who cleared it
 * from the active list and when (wall time, ms since the epoch); the RMS of each window's main
 * channel, and per rollup bucket what a chart of it needs (how many results carried an RMS, their
 * sum, min and max: a bucket with none keeps NULLs and a count of 0). Results and buckets logged
 * before have no RMS. Adding columns rewrites no row, so this is quick on a large log.
 */
const RMS_COLUMNS = ['rms_count INTEGER NOT NULL DEFAULT 0', 'rms_sum REAL', 'rms_min REAL', 'rms_max REAL'];
const V10 = `
ALTER TABLE alerts ADD COLUMN acked_ms INTEGER;
ALTER TABLE alerts ADD COLUMN acked_by TEXT;
ALTER TABLE alerts ADD COLUMN cleared_ms INTEGER;
ALTER TABLE alerts ADD COLUMN cleared_by TEXT;
ALTER TABLE results ADD COLUMN rms REAL;
${['result_minutes', 'result_hours'].flatMap((t) => RMS_COLUMNS.map((c) => `ALTER TABLE ${t} ADD COLUMN ${c};`)).join('\n')}
`;

/**
 * Model hot-swap: every step of every update (staged, checked, active, refused, rolled back) with
 * its reason, so that why a variant serves, or was refused, is in the log and not only in a
 * message that went by. Dated by wall time: an update has no data time.
 */
const V11 = `
CREATE TABLE model_updates (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  model TEXT NOT NULL,
  pipeline TEXT,
  variant TEXT,
  sha256 TEXT,
  source TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('staged', 'checked', 'active', 'refused', 'rolled-back')),
  reason TEXT
);
CREATE INDEX model_updates_model ON model_updates (model, time_ms);
`;

/**
 * Teach-in baselines per device and model: one row per teach-in, its state moving from learning
 * to active (or cancelled, failed), an active one superseded by the next. The scores learned are
 * not copied here: they are the device's results, read back from `results` after a restart.
 * started_ms and ended_ms are wall time; first_window_ms is the data time of the first window learned.
 */
const V12 = `
CREATE TABLE baselines (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  model TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('learning', 'active', 'cancelled', 'failed', 'superseded')),
  started_ms INTEGER NOT NULL,
  started_by TEXT,
  target_windows INTEGER,
  target_minutes REAL,
  first_window_ms INTEGER,
  windows INTEGER NOT NULL DEFAULT 0,
  quantile REAL NOT NULL,
  margin REAL NOT NULL,
  card_threshold REAL,
  threshold REAL,
  median REAL,
  max_score REAL,
  ended_ms INTEGER,
  reason TEXT
);
CREATE INDEX baselines_device_model ON baselines (device, model, id);
`;

/**
 * The healthy windows an anomaly model's teach-in learned, kept for a fine-tune on the device's
 * own data (runtime/finetune): the model-input features of each window, float32 little-endian,
 * at most 5,000 per baseline (the first learned). time_ms is the window's data time.
 */
const V13 = `
CREATE TABLE taught_windows (
  id INTEGER PRIMARY KEY,
  baseline_id INTEGER NOT NULL REFERENCES baselines (id) ON DELETE CASCADE,
  time_ms INTEGER NOT NULL,
  features BLOB NOT NULL
);
CREATE INDEX taught_windows_baseline ON taught_windows (baseline_id, id);
`;

/**
 * Per-device model variants: a device given a model folder of its own for one model id (the
 * newest row of a pair is its state), and which device variant made each result (its ONNX
 * sha256; null: the pipeline's shared variant).
 */
const V14 = `
CREATE TABLE device_models (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  model TEXT NOT NULL,
  folder TEXT,
  variant TEXT,
  sha256 TEXT,
  state TEXT NOT NULL CHECK (state IN ('active', 'rolled-back', 'cleared')),
  since_ms INTEGER NOT NULL,
  reason TEXT
);
CREATE INDEX device_models_pair ON device_models (device, model, id);
ALTER TABLE results ADD COLUMN model_sha256 TEXT;
`;

/**
 * How each baseline's threshold was derived (teach-in's K-run rule): 'windows', the quantile of the
 * single windows' scores (every baseline before this migration); 'runs', the quantile of the
 * lowest score of each run of `consecutive` windows (K, the alert's windows in a row), so a lone
 * spike taught does not raise it; max_run_score, the highest of those lows (the threshold's floor).
 */
const V15 = `
ALTER TABLE baselines ADD COLUMN rule TEXT NOT NULL DEFAULT 'windows' CHECK (rule IN ('windows', 'runs'));
ALTER TABLE baselines ADD COLUMN consecutive INTEGER NOT NULL DEFAULT 1 CHECK (consecutive >= 1);
ALTER TABLE baselines ADD COLUMN max_run_score REAL;
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'results, alerts, dead letters, outbox, inbound keys, windows', up: (db) => db.exec(V1) },
  { version: 2, name: 'inbound journal and device cursors', up: (db) => db.exec(V2) },
  { version: 3, name: 'inbound QoS 2 messages awaiting release', up: (db) => db.exec(V3) },
  { version: 4, name: 'replay attempts per journal row', up: (db) => db.exec(V4) },
  { version: 5, name: 'MQTT session epochs and the message behind each packet id', up: (db) => db.exec(V5) },
  { version: 6, name: 'message keys of the last logged window per device', up: (db) => db.exec(V6) },
  { version: 7, name: 'results and alerts in data time; alert state per device', up: (db) => db.exec(V7) },
  { version: 8, name: 'the broker\'s grants at the last SUBSCRIBE per client', up: (db) => db.exec(V8) },
  { version: 9, name: 'minute and hour rollups of the results', up: (db) => db.exec(V9) },
  { version: 10, name: 'alert acknowledgements and clears; RMS of the main channel in results and rollups', up: (db) => db.exec(V10) },
  { version: 11, name: 'model hot-swap updates and their states', up: (db) => db.exec(V11) },
  { version: 12, name: 'teach-in baselines per device and model', up: (db) => db.exec(V12) },
  { version: 13, name: 'the healthy windows each anomaly teach-in learned, for fine-tuning', up: (db) => db.exec(V13) },
  { version: 14, name: 'per-device model variants; the device variant of each result', up: (db) => db.exec(V14) },
  { version: 15, name: 'the rule and K each teach-in baseline was derived with', up: (db) => db.exec(V15) },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the file up to the last migration. Returns the versions before and after. A file newer
 * than the code is refused before anything is written to it.
 */
export function migrate(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}: migrations are numbered 1, 2, 3, ... in order`);
  });
  const latest = migrations.length;
  const from = schemaVersion(db);
  if (from > latest) {
    throw new StoreError('E_STORE_SCHEMA', `${file}: the database has schema version ${from}, newer than the ${latest} this edge-infer knows; upgrade edge-infer or use another file`);
  }
  for (const m of migrations.slice(from)) {
    const apply = db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      apply.immediate();
    } catch (err) {
      throw new StoreError('E_STORE_SCHEMA', `${file}: migration ${m.version} (${m.name}) failed: ${messageOf(err)}`, { cause: err });
    }
  }
  return { from, to: latest };
}
