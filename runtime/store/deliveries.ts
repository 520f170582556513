// Per MQTT client: the broker session's epoch and, per packet id, the inbound message last received
// under it (its key and content hash) while its acknowledgement may still be unread by the broker.
// runtime/stream/identity.ts decides with them whether a DUP message is a redelivery. Notes and
// forgets are written in the journal's group commit, so a message's note is on disk no later than
// its journal row (and its acknowledgement waits for both).
import type Database from 'better-sqlite3';
import { inboundRange } from './inbound-keys';

/** The message last received under one packet id. */
export interface Delivery {
  messageId: number;
  key: string;
  hash: string;
}

export type DeliveryOp =
  | { kind: 'note'; clientId: string; delivery: Delivery; receivedMs: number }
  | { kind: 'forget'; clientId: string; messageId: number; key: string };

export class DeliveryStatements {
  readonly upsert: Database.Statement;
  readonly remove: Database.Statement;
  readonly removeInbound: Database.Statement;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO mqtt_deliveries (client_id, message_id, key, hash, received_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id, message_id) DO UPDATE SET key = excluded.key, hash = excluded.hash, received_ms = excluded.received_ms`,
    );
    // Only that message's row: the packet id may carry a newer message by now.
    this.remove = db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ? AND message_id = ? AND key = ?');
    this.removeInbound = db.prepare('DELETE FROM inbound WHERE key >= ? AND key < ?');
  }

  /** Applies queued notes and forgets, inside the caller's transaction; returns the inbound keys deleted. */
  apply(ops: readonly DeliveryOp[]): number {
    let inboundDeleted = 0;
    for (const op of ops) {
      if (op.kind === 'note') this.upsert.run(op.clientId, op.delivery.messageId, op.delivery.key, op.delivery.hash, op.receivedMs);
      else {
        this.remove.run(op.clientId, op.messageId, op.key);
        // The broker has read the message's acknowledgement: it will never bring the message
        // again, so the keys that would recognise it may go too (rows of the message consumed
        // later, when it was acknowledged before being logged, stay until retention).
        inboundDeleted += this.removeInbound.run(...inboundRange(op.key)).changes;
      }
    }
    return inboundDeleted;
  }
}

/** One client's session epoch and deliveries (ResultStore.deliveries(clientId)). */
export class Deliveries {
  private readonly selectEpoch: Database.Statement;
  private readonly selectAll: Database.Statement;
  private readonly bump: () => number;

  constructor(
    db: Database.Database,
    readonly clientId: string,
    /** Queues an operation into the journal's next group commit; a note's promise resolves once committed. */
    private readonly enqueue: (op: DeliveryOp) => Promise<void>,
  ) {
    this.selectEpoch = db.prepare('SELECT epoch FROM mqtt_sessions WHERE client_id = ?').pluck();
    this.selectAll = db.prepare('SELECT message_id AS messageId, key, hash FROM mqtt_deliveries WHERE client_id = ? ORDER BY received_ms');
    const setEpoch = db.prepare('INSERT INTO mqtt_sessions (client_id, epoch) VALUES (?, 1) ON CONFLICT (client_id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch').pluck();
    const clear = db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ?');
    this.bump = db.transaction(() => {
      clear.run(clientId);
      return setEpoch.get(clientId) as number;
    });
  }

  /** The current session epoch; 0 before the first session. */
  epoch(): number {
    return (this.selectEpoch.get(this.clientId) as number | undefined) ?? 0;
  }

  /**
   * The broker has no session for the client: a new epoch, and every delivery of the old one is
   * forgotten (that broker will redeliver none of them). Committed when this returns.
   */
  newEpoch(): number {
    return this.bump();
  }

  /** The deliveries of the current epoch, oldest first. */
  all(): Delivery[] {
    return this.selectAll.all(this.clientId) as Delivery[];
  }

  /** Records the message now carried by its packet id; resolves once committed. */
  note(delivery: Delivery, receivedMs: number): Promise<void> {
    return this.enqueue({ kind: 'note', clientId: this.clientId, delivery, receivedMs });
  }

  /** The broker has read this message's acknowledgement: its packet id is free again. */
  forget(messageId: number, key: string): void {
    void this.enqueue({ kind: 'forget', clientId: this.clientId, messageId, key }).catch(() => undefined);
  }
}
