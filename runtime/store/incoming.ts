// Inbound QoS 2 messages of one MQTT client between PUBREC and their journal commit. Each put is
// its own transaction, committed (as the sync mode promises) when put() returns: the client
// answers PUBREC only after that, so a message the broker counts as received is on disk.
import type Database from 'better-sqlite3';
import type { HeldPublish } from './types';

export class IncomingMessages {
  private readonly insert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly selectAll: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly removeAll: Database.Statement;

  constructor(db: Database.Database, readonly clientId: string) {
    this.insert = db.prepare(
      `INSERT INTO mqtt_incoming (client_id, message_id, topic, payload, packet, received_ms) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, message_id) DO UPDATE SET topic = excluded.topic, payload = excluded.payload, packet = excluded.packet, received_ms = excluded.received_ms`,
    );
    this.select = db.prepare('SELECT message_id, topic, payload, packet FROM mqtt_incoming WHERE client_id = ? AND message_id = ?');
    this.selectAll = db.prepare('SELECT message_id, topic, payload, packet FROM mqtt_incoming WHERE client_id = ? ORDER BY received_ms');
    this.remove = db.prepare('DELETE FROM mqtt_incoming WHERE client_id = ? AND message_id = ?');
    this.removeAll = db.prepare('DELETE FROM mqtt_incoming WHERE client_id = ?');
  }

  /** Keeps the message (replacing one with the same id); committed when this returns. */
  put(p: HeldPublish): void {
    const { messageId, topic, payload, ...rest } = p;
    this.insert.run(this.clientId, messageId, topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), JSON.stringify(rest), Date.now());
  }

  get(messageId: number): HeldPublish | undefined {
    const row = this.select.get(this.clientId, messageId) as Row | undefined;
    return row && publishOf(row);
  }

  /** Every message held, oldest first. */
  all(): HeldPublish[] {
    return (this.selectAll.all(this.clientId) as Row[]).map(publishOf);
  }

  del(messageId: number): void {
    this.remove.run(this.clientId, messageId);
  }

  /** Forgets every message of the client (the broker has no session for it any more). */
  clear(): void {
    this.removeAll.run(this.clientId);
  }
}

interface Row {
  message_id: number;
  topic: string;
  payload: Buffer;
  packet: string;
}

function publishOf(r: Row): HeldPublish {
  return { ...(JSON.parse(r.packet) as Omit<HeldPublish, 'messageId' | 'topic' | 'payload'>), messageId: r.message_id, topic: r.topic, payload: r.payload };
}
