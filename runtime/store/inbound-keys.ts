// The row keys of the `inbound` table: which messages each pipeline consumed, so that a
// redelivery of one is recognised. Message keys start with a content hash, in no order; a row key
// starts with the message's tag instead (runtime/stream/identity.ts), which grows with each message
// a process takes. So each commit's new rows land on a few neighbouring pages rather than one page
// each (on an SD card every page a commit touches is written again), and the rows of one message,
// one per pipeline, share a prefix: they go together once the broker has read its acknowledgement.

/** The tag of a message key: its last dot-separated part, before any suffix a pipeline added (~...). */
function tagOf(key: string): string {
  const base = key.split('~', 1)[0];
  return base.slice(base.lastIndexOf('.') + 1);
}

/** The row key under which the log remembers that a pipeline consumed a message. */
export function inboundKey(pipeline: string, key: string): string {
  return `${tagOf(key)} ${pipeline}:${key}`;
}

/** The range [from, to) of row keys holding every pipeline's row of a message. */
export function inboundRange(key: string): [string, string] {
  const tag = tagOf(key);
  // ' ' (0x20) follows the tag in every row key of the message; '!' is the next character.
  return [`${tag} `, `${tag}!`];
}
