// The commit stage: a unit goes to the log together with the messages it retires (their journal
// rows are deleted in the same transaction). The log holds a batch that fails as a whole and
// tries it again before anything later, so a device's cursor never passes windows that are not
// logged. A unit the log refuses on its own (a record it cannot take) is replaced by its
// fallback — its windows as dead letters — so its messages retire accounted for, never skipped.
import { EdgeInferError, isEdgeInferError } from '../errors';
import type { GatewayMetrics } from '../serve/metrics';
import type { CommitUnit, ResultStore } from '../store';
import type { MessageLedger } from './ledger';

export class Committer {
  constructor(
    private readonly pipeline: string,
    private readonly store: ResultStore,
    private readonly ledger: MessageLedger,
    private readonly metrics: GatewayMetrics,
    /** Called after each commit (the outbox publisher waits on it). */
    private readonly onCommit: (unit: CommitUnit) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Commits whatever messages retired, on their own (births, empty payloads, evicted devices). */
  retireNow(): Promise<void> {
    return this.ledger.hasConsumable ? this.write({}) : Promise.resolve();
  }

  /**
   * Hands the unit to the log at once, with the messages retired so far, and resolves when it is
   * committed or given up; never rejects. `fallback(err)` builds what to commit instead when the
   * log refuses this unit on its own (E_STORE_UNIT).
   */
  async write(unit: CommitUnit, fallback?: (err: EdgeInferError) => CommitUnit): Promise<void> {
    const retired = this.ledger.take();
    unit.consumed = unit.consumed ? [...unit.consumed, ...retired.consumed!] : retired.consumed;
    unit.inbound = unit.inbound ? [...unit.inbound, ...retired.inbound!] : retired.inbound;
    const t0 = performance.now();
    try {
      await this.store.commit(unit);
      this.metrics.dbWriteSeconds.observe((performance.now() - t0) / 1000);
    } catch (err) {
      const error = isEdgeInferError(err) ? err : new EdgeInferError('E_STORE_WRITE', err instanceof Error ? err.message : String(err), { cause: err });
      if (fallback && error.code === 'E_STORE_UNIT') {
        const instead = fallback(error);
        instead.consumed = unit.consumed;
        instead.inbound = unit.inbound;
        this.onError(new EdgeInferError('E_STORE_UNIT', `${this.pipeline}: results not logged, recorded as dead letters instead: ${error.message}`, { cause: err }));
        return this.settleWith(instead, unit);
      }
      // The store closed with the unit not committed: its messages stay journaled, and the
      // cursors did not move, so the next start replays them.
      this.onError(new EdgeInferError(error.code, `${this.pipeline}: not logged (the messages stay journaled for the next start): ${error.message}`, { cause: err }));
      this.ledger.committed(unit.consumed);
      return;
    }
    this.ledger.committed(unit.consumed);
    this.committed(unit);
  }

  /** Tells the listener (the outbox publisher, a console): its failure is its own, not the commit's. */
  private committed(unit: CommitUnit): void {
    try {
      this.onCommit(unit);
    } catch (err) {
      this.onError(err);
    }
  }

  private async settleWith(instead: CommitUnit, original: CommitUnit): Promise<void> {
    try {
      await this.store.commit(instead);
      this.committed(instead);
    } catch (err) {
      this.onError(new EdgeInferError(isEdgeInferError(err) ? err.code : 'E_STORE_WRITE', `${this.pipeline}: dead letters not logged either (the messages stay journaled for the next start): ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    } finally {
      this.ledger.committed(original.consumed);
    }
  }
}
