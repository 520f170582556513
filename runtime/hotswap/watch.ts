// Watches the models directory for variants dropped in or rewritten. A file is taken only once
// it is complete: its card is beside it and both are the same (size, mtime, inode, ctime) at two
// looks in a row, so a copy in progress is never read half-written. Files present at start are
// what the gateway already knows, not updates. Polled, not fs.watch: it works the same on every
// file system (network shares, SD cards mounted oddly) and costs a stat per file per look.
import { promises as fs } from 'node:fs';
import { type ModelFileFound, findModelFiles } from '../model';

export class DropWatcher {
  /** The stamp each file had when it was last taken (or seen at start). */
  private readonly known = new Map<string, string>();
  /** The stamp seen at the last look, for files not yet taken. */
  private readonly pending = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly pollMs: number,
    /** A complete file, new or changed since it was last taken. */
    private readonly onFile: (found: ModelFileFound) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Remembers what is there now (not updates), then looks every pollMs. */
  async start(): Promise<void> {
    for (const f of await this.scan()) this.known.set(f.file, f.stamp);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.looking = this.look()
        .catch((err: unknown) => this.onError(err))
        .finally(() => {
          this.looking = undefined;
          this.schedule();
        });
    }, this.pollMs);
    this.timer.unref();
  }

  private async scan(): Promise<ModelFileFound[]> {
    const { models } = await findModelFiles(this.dir);
    // Only files whose card is there: a model without its card is still being dropped in.
    const complete = await Promise.all(models.map(async (m) => ((await fs.stat(m.cardFile).catch(() => null)) ? m : null)));
    return complete.filter((m): m is ModelFileFound => m !== null);
  }

  /** One look: files the same as at the last look, and not taken in that state, are taken. */
  async look(): Promise<void> {
    const seen = new Set<string>();
    for (const f of await this.scan()) {
      seen.add(f.file);
      if (this.known.get(f.file) === f.stamp) {
        this.pending.delete(f.file);
        continue;
      }
      if (this.pending.get(f.file) === f.stamp) {
        this.pending.delete(f.file);
        this.known.set(f.file, f.stamp);
        if (!this.stopped) this.onFile(f);
      } else {
        this.pending.set(f.file, f.stamp);
      }
    }
    for (const file of [...this.pending.keys()]) if (!seen.has(file)) this.pending.delete(file);
    for (const file of [...this.known.keys()]) if (!seen.has(file)) this.known.delete(file);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.looking;
  }
}
