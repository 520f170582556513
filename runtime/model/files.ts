// Finding model files in a models directory, and the stamps that tell whether one changed
// since the last look without reading it.
import { type Dirent, type Stats, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';

/** A model file found on disk, with its card's path and a stamp of both. */
export interface ModelFileFound {
  /** Absolute path of the .onnx file. */
  readonly file: string;
  /** Where its card file would be: `<stem>.model.json` next to it. */
  readonly cardFile: string;
  /** Changes whenever the model or its card is written, replaced, created or deleted. */
  readonly stamp: string;
  readonly mtimeMs: number;
}

/** A directory that could not be read; its models are missing from the scan. */
export interface DirectoryProblem {
  readonly file: string;
  readonly error: EdgeInferError;
}

// Build scripts, installed packages and hidden folders (.git, editors' temp) hold no models to serve.
const SKIPPED_FOLDERS = new Set(['node_modules', 'build']);

/** `fault-classifier.int8.onnx` → `fault-classifier.int8.model.json`, in the same folder. */
export function cardFileFor(onnxFile: string): string {
  return path.join(path.dirname(onnxFile), `${path.basename(onnxFile, '.onnx')}.model.json`);
}

// ctime too: `cp -p` over a file of the same size keeps its inode and mtime, not its ctime.
function stampOf(s: Stats): string {
  return `${s.size}:${s.mtimeMs}:${s.ino}:${s.ctimeMs}`;
}

async function statOrNull(file: string): Promise<Stats | null> {
  try {
    return await fs.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function found(file: string, stats: Stats): Promise<ModelFileFound> {
  const cardFile = cardFileFor(file);
  const card = await statOrNull(cardFile).catch(() => null);
  return { file, cardFile, stamp: `${stampOf(stats)}|${card ? stampOf(card) : '-'}`, mtimeMs: stats.mtimeMs };
}

/**
 * Whether a file event (a path relative to the models directory) can matter to a scan: not inside
 * a skipped folder, not a hidden file such as the temporary file of an atomic write.
 * An event without a name might be anything.
 */
export function isWatchedPath(relative: string | null | undefined): boolean {
  if (!relative) return true;
  return relative.split(/[\\/]/).every((part) => !part.startsWith('.') && !SKIPPED_FOLDERS.has(part));
}

function isModelName(name: string): boolean {
  return name.endsWith('.onnx') && !name.startsWith('.');
}

/** A directory entry as a model file, or null; symlinked files count, symlinked folders do not (loops). */
async function asModelFile(dir: string, entry: Dirent): Promise<ModelFileFound | null> {
  if (!isModelName(entry.name) || !(entry.isFile() || entry.isSymbolicLink())) return null;
  const file = path.join(dir, entry.name);
  const stats = await statOrNull(file);
  return stats?.isFile() ? found(file, stats) : null;
}

async function walk(dir: string, isRoot: boolean, models: ModelFileFound[], problems: DirectoryProblem[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    // A sub-folder deleted while we walk is simply gone; the models directory itself going is news.
    if (code === 'ENOENT' && !isRoot) return;
    const what = code === 'ENOENT' ? 'the models directory does not exist (any more)' : `cannot read the folder (${code})`;
    problems.push({ file: dir, error: new EdgeInferError('E_REGISTRY', `${dir}: ${what}`, { cause: err }) });
    return;
  }
  const work = entries.map(async (entry) => {
    if (entry.name.startsWith('.')) return;
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name)) await walk(path.join(dir, entry.name), false, models, problems);
      return;
    }
    try {
      const model = await asModelFile(dir, entry);
      if (model) models.push(model);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      const file = path.join(dir, entry.name);
      problems.push({ file, error: new EdgeInferError('E_MODEL_FILE', `${file}: cannot read (${code})`, { cause: err }) });
    }
  });
  await Promise.all(work);
}

/**
 * Every `*.onnx` under `root`, sorted by path, skipping hidden folders, node_modules and build.
 * Folders that cannot be read come back as problems instead of failing the whole scan.
 */
export async function findModelFiles(root: string): Promise<{ models: ModelFileFound[]; problems: DirectoryProblem[] }> {
  const models: ModelFileFound[] = [];
  const problems: DirectoryProblem[] = [];
  await walk(root, true, models, problems);
  models.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { models, problems };
}
