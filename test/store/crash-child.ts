// Child process of 60.crash.test.ts: commits units as fast as it can and prints each unit's id
// on stdout once its commit promise has resolved, until the parent kills it with SIGKILL.
// Usage: tsx crash-child.ts <db file> <sync> <first id>
// Unit n: inbound key u-n; two results fed by it; one outbox message {"id":n}; one window at
// time n (features of varying size, so the WAL grows and checkpoints run). Pipes are
// written synchronously on Linux, so a printed id reached the parent before any kill.
import { type CommitUnit, ResultStore, type SyncMode } from '../../runtime/store';

const [file, sync, first] = process.argv.slice(2);
const store = ResultStore.open({ path: file, sync: sync as SyncMode, batchMs: 2, batchRows: 500 });

function unit(id: number): CommitUnit {
  const key = `u-${id}`;
  const result = (score: number) => ({
    timeMs: id, device: `press-${id % 7}`, model: 'vibration-anomaly', variant: 'int8', score, label: null, anomaly: false,
    outputs: { score: [score] }, latencyMs: 1, windowStartMs: id - 1, windowEndMs: id, messageKeys: [key],
  });
  const size = 128 + ((id * 7919) % 2048);
  return {
    inbound: [{ topic: 'plant/crash', key, receivedMs: id }],
    results: [result(0.25), result(0.75)],
    outbox: [{ topic: 'edge/crash', payload: JSON.stringify({ id }), qos: 1 }],
    windows: [{ timeMs: id, device: 'press-0', model: 'vibration-anomaly', features: new Float32Array(size).fill(id % 100), dims: [size] }],
  };
}

let next = Number(first);
let inFlight = 0;

function pump(): void {
  while (inFlight < 400) {
    const id = next++;
    inFlight++;
    store.commit(unit(id)).then(
      () => {
        inFlight--;
        process.stdout.write(`${id}\n`);
      },
      (err: Error) => {
        process.stderr.write(`unit ${id} failed: ${err.message}\n`);
        process.exit(2);
      },
    );
  }
  setImmediate(pump);
}

process.stdout.write('ready\n');
pump();
