// runtime/store: the gateway's SQLite log (results, alerts, dead letters, outbox, inbound keys,
// calibration windows), written in batched transactions. See README.md.
export { ResultStore, BUSY_TIMEOUT_MS, WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT } from './store';
export { StoreError, isStoreError } from './errors';
export type { StoreErrorCode } from './errors';
export { DEAD_LETTER_MAX_BYTES } from './writer';
export { SCHEMA_VERSION } from './schema';
export { LOW_WATER } from './retention';
export type { IncomingMessages } from './incoming';
export type { SubscriptionGrants, SubscriptionGrant } from './grants';
export type { Deliveries, Delivery } from './deliveries';
export { BASELINE_STATES } from './baselines';
export type { Baselines, BaselineRow, BaselineRowState } from './baselines';
export { DEVICE_MODEL_STATES } from './device-models';
export type { DeviceModels, DeviceModelRecord, DeviceModelRow, DeviceModelState } from './device-models';
export { UPDATE_STATES } from './model-updates';
export type { ModelUpdates, ModelUpdateRecord, ModelUpdateRow, UpdateState } from './model-updates';
export { DEFAULTS as STORE_DEFAULTS, MIN_MAX_BYTES } from './options';
export { inboundKey, inboundRange } from './inbound-keys';
export type {
  StoreOptions, RetentionOptions, SyncMode, InboundRef, HeldPublish, JournalEntry, JournalRow, ConsumedRef, CursorRecord, DeviceCursor, ResultRecord, AlertRecord, DeadLetterRecord, OutboxMessage, WindowRecord, CommitUnit,
  ResultRow, AlertRow, DeadLetterRow, OutboxEntry, WindowRow, SeriesPoint, ChartPoint, SeriesResult, SeriesSource, ChartField, ModelStatsRow, AgreementRow, AggregateRow, StoreCounts, StoreStats,
} from './types';
