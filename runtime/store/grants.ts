// What the broker granted at one MQTT client's last SUBSCRIBE, per filter. A persistent session
// keeps the subscriptions at the broker, and a restart that finds its session subscribes to
// nothing: these rows are what the gateway then knows of them (for /health, and to subscribe
// only to filters the session is not known to hold).
import type Database from 'better-sqlite3';

/** One filter's grant as remembered. */
export interface SubscriptionGrant {
  filter: string;
  /** The QoS the gateway asked for. */
  askedQos: number;
  /** The SUBACK's code: the QoS granted, or 128 and up when refused. */
  granted: number;
  /** When the broker granted it, ms since the epoch. */
  grantedMs: number;
}

export class SubscriptionGrants {
  private readonly selectAll: Database.Statement;
  private readonly upsert: Database.Statement;
  private readonly removeAll: Database.Statement;
  private readonly saveAll: (grants: readonly SubscriptionGrant[]) => void;

  constructor(db: Database.Database, readonly clientId: string) {
    this.selectAll = db.prepare('SELECT filter, asked_qos AS askedQos, granted, granted_ms AS grantedMs FROM mqtt_subscriptions WHERE client_id = ? ORDER BY filter');
    this.upsert = db.prepare(
      `INSERT INTO mqtt_subscriptions (client_id, filter, asked_qos, granted, granted_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id, filter) DO UPDATE SET asked_qos = excluded.asked_qos, granted = excluded.granted, granted_ms = excluded.granted_ms`,
    );
    this.removeAll = db.prepare('DELETE FROM mqtt_subscriptions WHERE client_id = ?');
    this.saveAll = db.transaction((grants: readonly SubscriptionGrant[]) => {
      for (const g of grants) this.upsert.run(clientId, g.filter, g.askedQos, g.granted, g.grantedMs);
    });
  }

  /** The client's remembered grants, by filter. */
  all(): SubscriptionGrant[] {
    return this.selectAll.all(this.clientId) as SubscriptionGrant[];
  }

  /** Keeps a SUBACK's grants (replacing earlier ones of the same filters); committed when this returns. */
  save(grants: readonly SubscriptionGrant[]): void {
    this.saveAll(grants);
  }

  /** Forgets every grant of the client (the broker has no session for it any more). */
  clear(): void {
    this.removeAll.run(this.clientId);
  }
}
