// Sparkplug births a pipeline keeps journaled. DATA can only be read with the metric definitions
// of its node's NBIRTH and its device's DBIRTH, so those messages stay in the journal until a
// newer birth or a death replaces them: a replay after a restart reads them first (journal
// order), and the DATA after them decodes as before the restart.
import { parseSparkplugTopic } from './decoders';

interface NodeBirths {
  nbirth?: string;
  /** DBIRTH keys by device. */
  dbirths: Map<string, string>;
}

export class SparkplugBirths {
  private readonly nodes = new Map<string, NodeBirths>();

  /**
   * A message the decoder took without error: whether to keep it (a birth), and the keys of the
   * births it replaces or ends. An NDEATH ends the node's births even if it is a late one from an
   * earlier connection: the node is then asked to rebirth when its DATA cannot be read.
   */
  took(topic: string, key: string): { keep: boolean; replaced: string[] } {
    let t: ReturnType<typeof parseSparkplugTopic>;
    try {
      t = parseSparkplugTopic(topic);
    } catch {
      return { keep: false, replaced: [] };
    }
    if (t.type === 'STATE') return { keep: false, replaced: [] };
    const id = `${t.group}/${t.edgeNode}`;
    const node = this.nodes.get(id);
    const all = (n: NodeBirths | undefined): string[] => (n ? [...(n.nbirth ? [n.nbirth] : []), ...n.dbirths.values()] : []);
    switch (t.type) {
      case 'NBIRTH':
        this.nodes.set(id, { nbirth: key, dbirths: new Map() });
        return { keep: true, replaced: all(node) };
      case 'NDEATH':
        this.nodes.delete(id);
        return { keep: false, replaced: all(node) };
      case 'DBIRTH': {
        const births = node ?? { dbirths: new Map<string, string>() };
        this.nodes.set(id, births);
        const old = births.dbirths.get(t.device as string);
        births.dbirths.set(t.device as string, key);
        return { keep: true, replaced: old ? [old] : [] };
      }
      case 'DDEATH': {
        const old = node?.dbirths.get(t.device as string);
        if (old) node!.dbirths.delete(t.device as string);
        return { keep: false, replaced: old ? [old] : [] };
      }
      default:
        return { keep: false, replaced: [] };
    }
  }
}
