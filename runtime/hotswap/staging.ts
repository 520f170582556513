// The staging folder: an update's ONNX bytes and card are written here, fsynced, before anything
// is checked, so what is checked is exactly what will be served, and a dropped file that changes
// afterwards does not change the variant under test. Names are by sha256: one copy per content.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';

export interface Staged {
  /** The staged ONNX file. */
  file: string;
  /** Its card, beside it (`<stem>.model.json`). */
  cardFile: string;
}

let writes = 0;

async function writeSynced(file: string, bytes: Uint8Array | string): Promise<void> {
  // Written under a temporary name, fsynced, then renamed: a crash leaves the whole file or none,
  // and a reader sees the old file or the new one. The name is the write's own: the same update
  // twice (a redelivery) may be staged at the same moment.
  const tmp = `${file}.tmp-${process.pid}-${++writes}`;
  const h = await fs.open(tmp, 'w');
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, file);
}

async function syncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Where an update is staged: `<dir>/<model>/<model>.<sha12>.onnx` and its card beside it. */
export function stagedPaths(dir: string, model: string, sha256: string): Staged {
  const stem = path.join(dir, model, `${model}.${sha256.slice(0, 12)}`);
  return { file: `${stem}.onnx`, cardFile: `${stem}.model.json` };
}

/** Writes an update where stagedPaths says, fsynced; E_UPDATE when the folder cannot be written. */
export async function stageUpdate(dir: string, model: string, sha256: string, onnx: Uint8Array, cardText: string): Promise<Staged> {
  const folder = path.join(dir, model);
  const { file, cardFile } = stagedPaths(dir, model, sha256);
  try {
    await fs.mkdir(folder, { recursive: true });
    await writeSynced(cardFile, cardText);
    await writeSynced(file, onnx);
    await syncDir(folder);
  } catch (err) {
    throw new EdgeInferError('E_UPDATE', `${folder}: cannot stage the update (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return { file, cardFile };
}

/** Removes a staged update (refused or rolled back); a file already gone is fine. */
export async function unstage(s: Staged): Promise<void> {
  await Promise.all([fs.rm(s.file, { force: true }), fs.rm(s.cardFile, { force: true })]);
}
