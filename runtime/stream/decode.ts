// The decode stage: a message's topic and payload become sample groups, one per device (a
// Sparkplug DATA message may carry several), with the devices of other partitions left out.
import type { DecodedSamples, Decoder } from './decoders';
import { type TopicPattern, deviceFromTopic } from './topic';

export interface DecodedMessage {
  /** The device the topic names (null when the pattern has no {device} level). */
  device: string | null;
  /** Sample groups of the devices this gateway owns, in payload order. */
  groups: DecodedSamples[];
}

/**
 * Decodes one message. Throws an EdgeInferError naming what is wrong (the topic's device level,
 * the payload's field) for the dead letter; `device` on the error path is the topic's, if any.
 */
export function decodeMessage(pattern: TopicPattern, decoder: Decoder, topic: string, payload: Uint8Array, owns: (device: string) => boolean): DecodedMessage {
  const device = pattern.deviceLevel >= 0 ? deviceFromTopic(pattern, topic) : null;
  const groups = decoder.decode(payload, { topic, device: device ?? topic }).filter((g) => owns(g.device));
  return { device, groups };
}

/** The topic's device, or undefined when the topic has none (or an empty one). */
export function topicDevice(pattern: TopicPattern, topic: string): string | undefined {
  if (pattern.deviceLevel < 0) return undefined;
  try {
    return deviceFromTopic(pattern, topic);
  } catch {
    return undefined;
  }
}
