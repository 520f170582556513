// MQTT topics: matching filters with wildcards, shared subscriptions, and reading the device id
// out of a topic with a pattern such as `plant/{device}/vibration`.
import { EdgeInferError } from '../errors';

/** True when `topic` matches the MQTT filter (`+` one level, `#` the rest; `$share/g/` ignored). */
export function topicMatches(filter: string, topic: string): boolean {
  return filterMatcher(filter)(topic);
}

/** A matcher for one filter, split once: the gateway matches every message against every pipeline's filter. */
export function filterMatcher(filter: string): (topic: string) => boolean {
  const f = stripShare(filter).split('/');
  const wildFirst = f[0] === '+' || f[0] === '#';
  return (topic) => {
    // Wildcards do not match topics starting with $ (MQTT 4.7.2).
    if (wildFirst && topic.startsWith('$')) return false;
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= t.length) return false;
      if (f[i] !== '+' && f[i] !== t[i]) return false;
    }
    return f.length === t.length;
  };
}

/** `$share/group/filter` → `filter`. */
export function stripShare(filter: string): string {
  const m = /^\$share\/[^/]+\/(.+)$/.exec(filter);
  return m ? m[1] : filter;
}

/** A topic pattern: an MQTT filter in which one level may be `{device}`. */
export interface TopicPattern {
  /** What to subscribe to: the pattern with `{device}` as `+`. */
  filter: string;
  /** The level that holds the device id, or -1 when the pattern has none. */
  deviceLevel: number;
}

/** Parses `plant/{device}/vibration` (or a plain filter); refuses malformed filters with a reason. */
export function parseTopicPattern(pattern: string): TopicPattern {
  if (!pattern || pattern.includes('\u0000')) throw new EdgeInferError('E_ARGUMENT', `topic '${pattern}': expected an MQTT topic filter`);
  const share = /^(\$share\/[^/]+\/)(.+)$/.exec(pattern);
  const body = share ? share[2] : pattern;
  const levels = body.split('/');
  let deviceLevel = -1;
  levels.forEach((level, i) => {
    if (level === '{device}') {
      if (deviceLevel >= 0) throw new EdgeInferError('E_ARGUMENT', `topic '${pattern}': {device} appears twice`);
      deviceLevel = i;
    } else if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw new EdgeInferError('E_ARGUMENT', `topic '${pattern}': '#' must be a whole level, and the last`);
    } else if (level.includes('+') && level !== '+') {
      throw new EdgeInferError('E_ARGUMENT', `topic '${pattern}': '+' must be a whole level`);
    } else if (level.includes('{') || level.includes('}')) {
      throw new EdgeInferError('E_ARGUMENT', `topic '${pattern}': the only placeholder is {device}, got '${level}'`);
    }
  });
  const filter = (share ? share[1] : '') + levels.map((l) => (l === '{device}' ? '+' : l)).join('/');
  return { filter, deviceLevel };
}

/**
 * The device id a topic carries at the pattern's device level (or the whole topic when it has
 * none). An empty level (MQTT's `+` matches one: `plant//vibration`) names no device: E_INPUT_VALUE.
 */
export function deviceFromTopic(pattern: TopicPattern, topic: string): string {
  if (pattern.deviceLevel < 0) return topic;
  const level = topic.split('/')[pattern.deviceLevel];
  if (!level) throw new EdgeInferError('E_INPUT_VALUE', `topic '${topic}': level ${pattern.deviceLevel + 1}, which holds the device id in '${stripShare(pattern.filter)}', is ${level === undefined ? 'missing' : 'empty'}`);
  return level;
}
