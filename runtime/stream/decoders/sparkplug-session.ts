// What the decoder remembers per Sparkplug edge node between messages: the metric definitions
// its NBIRTH and DBIRTHs declared (DATA may name metrics by alias only, and usually omits the
// datatype), the bdSeq that pairs the NBIRTH with its NDEATH, and the last seq seen.
import { decodeError } from './fail';
import { has, uint64Key, type RawMetric } from './sparkplug-proto';

export interface MetricDef {
  name: string;
  /** The datatype the birth gave; DATA metrics normally leave it out. */
  datatype?: number;
}

/** The metrics one BIRTH declared, by alias and by name. */
export class MetricBook {
  private readonly byAlias = new Map<string, MetricDef>();
  private readonly byName = new Map<string, MetricDef>();

  /** Reads a birth's metrics; every one needs a name, and an alias names one metric only. */
  static fromBirth(metrics: readonly RawMetric[], topic: string, birth: 'NBIRTH' | 'DBIRTH'): MetricBook {
    const book = new MetricBook();
    metrics.forEach((m, i) => {
      if (!has(m, 'name') || !m.name) throw decodeError(topic, 'E_INPUT_VALUE', `${birth} metric #${i} has no name (a birth must name every metric)`);
      const def: MetricDef = { name: m.name, datatype: has(m, 'datatype') ? m.datatype : undefined };
      book.byName.set(def.name, def);
      if (has(m, 'alias')) {
        const alias = uint64Key(m.alias as NonNullable<RawMetric['alias']>);
        const other = book.byAlias.get(alias);
        if (other && other.name !== def.name) throw decodeError(topic, 'E_INPUT_VALUE', `${birth} gives alias ${alias} to both '${other.name}' and '${def.name}'`);
        book.byAlias.set(alias, def);
      }
    });
    return book;
  }

  /** The birth's definition of a DATA metric, found by name when it has one, else by alias. */
  lookup(m: RawMetric): MetricDef | undefined {
    if (has(m, 'name') && m.name) return this.byName.get(m.name);
    if (has(m, 'alias')) return this.byAlias.get(uint64Key(m.alias as NonNullable<RawMetric['alias']>));
    return undefined;
  }
}

export interface EdgeNodeSession {
  /** The NBIRTH's bdSeq, as text; an NDEATH ends this session only if it carries the same. */
  bdSeq: string | undefined;
  /** seq of the node's last message (0..255); undefined when unknown (see SparkplugDecoder.resync). */
  lastSeq: number | undefined;
  node: MetricBook;
  /** DBIRTH definitions by device id. */
  devices: Map<string, MetricBook>;
}

/**
 * Moves the node's seq on to `received` and says what was expected when that is not last + 1
 * (mod 256). The seq moves on either way, so one lost message costs one dead letter, not all
 * the messages after it.
 */
export function advanceSeq(session: EdgeNodeSession, received: number): number | undefined {
  if (session.lastSeq === undefined) {
    session.lastSeq = received;
    return undefined;
  }
  const expected = (session.lastSeq + 1) % 256;
  session.lastSeq = received;
  return received === expected ? undefined : expected;
}
