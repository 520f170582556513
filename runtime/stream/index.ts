// Sensor streams: payload decoders, per-device windows, the card's feature transforms, the
// scheduler that batches windows into runs, and the pipeline that joins them between MQTT and
// the result log.
export * from './decoders';
export { DeviceWindows } from './device-windows';
export { Scheduler } from './scheduler';
export { AlertTracker } from './alerts';
export type { AlertPolicy, AlertChange } from './alerts';
export { MqttSource } from './mqtt-source';
export { OutboxPublisher } from './publisher';
export { Pipeline } from './pipeline';
export { DevicePartition, partitionHash, partitionOf } from './partition';
export type { PartitionSpec } from './partition';
export { contentHash } from './identity';
export { startEmbeddedBroker } from './embedded-broker';
export type { EmbeddedBroker, EmbeddedBrokerOptions } from './embedded-broker';
export { topicMatches, parseTopicPattern } from './topic';
export { magnitudeSpectrum, peakFrequency, amplitudeAt, nextPowerOfTwo } from './spectrum';
export type { Spectrum } from './spectrum';
export { computeFeatures, normalize } from './features';
export { SlidingWindow } from './window';
export { WorkerPool, defaultWorkers, MAX_BATCH_CRASHES } from './pool';
export type { PoolOptions } from './pool';
export type { Window } from './window';
export { readInputWindows, windowsFromChannels, parseSamplesCsv, nestedToTensor } from './input-files';
export type { InputWindow } from './input-files';
