// The bundle ships two packages that are dev dependencies of the repository (Node-RED, which the
// second unit runs, and onnxruntime-node, an optional peer). `npm ci --omit=dev` takes the dev
// flags from the lockfile as written, so they are promoted here: in package.json and in the
// lockfile's root entry, and the flags of everything they pull in are computed again. The
// versions stay exactly as locked.
import { BundleError } from './errors';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

export interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
  [key: string]: unknown;
}

export interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Where `name`, required from the package at `from`, is found: node's lookup, folder by folder upwards. */
export function resolveInLock(lock: Lockfile, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const at = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (lock.packages[at]) return at;
    if (!dir) return undefined;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i < 0 ? '' : dir.slice(0, i);
  }
}

/** Production edges of a package: what it needs, and whether each is optional. */
function edges(entry: LockEntry): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  for (const n of Object.keys(entry.dependencies ?? {})) out.push([n, false]);
  for (const n of Object.keys(entry.optionalDependencies ?? {})) out.push([n, true]);
  // npm installs a peer unless it is marked optional; an optional peer is only used when present.
  for (const n of Object.keys(entry.peerDependencies ?? {})) if (entry.peerDependenciesMeta?.[n]?.optional !== true) out.push([n, false]);
  return out;
}

/**
 * Returns a package.json and lockfile in which `names` (dev dependencies) are dependencies, with
 * the dev/optional flags of every package recomputed from the production dependencies. Throws
 * when a name is not a dev dependency or is not in the lockfile.
 */
export function promoteToProduction(manifest: Manifest, lock: Lockfile, names: readonly string[]): { manifest: Manifest; lock: Lockfile } {
  if (lock.lockfileVersion < 2 || !lock.packages?.['']) throw new BundleError('E_BUNDLE_INPUT', `package-lock.json: lockfileVersion ${lock.lockfileVersion} has no 'packages' section; expected version 2 or 3 (npm 7 or newer)`);
  const m: Manifest = structuredClone(manifest);
  const l: Lockfile = structuredClone(lock);
  const root = l.packages[''];
  m.dependencies = { ...m.dependencies };
  root.dependencies = { ...root.dependencies };
  for (const name of names) {
    const range = m.devDependencies?.[name];
    if (range === undefined) throw new BundleError('E_BUNDLE_INPUT', `package.json: '${name}' is not a dev dependency, so it cannot be promoted into the bundle`);
    if (!l.packages[`node_modules/${name}`]) throw new BundleError('E_BUNDLE_INPUT', `package-lock.json: '${name}' is not locked at node_modules/${name}; run npm install in the repository first`);
    m.dependencies[name] = range;
    root.dependencies[name] = range;
    delete m.devDependencies![name];
    delete root.devDependencies?.[name];
    delete m.peerDependencies?.[name];
    delete root.peerDependencies?.[name];
    delete (m.peerDependenciesMeta as Record<string, unknown> | undefined)?.[name];
    delete root.peerDependenciesMeta?.[name];
  }
  // Reached from the root's production edges: through required edges only, or through an optional one.
  const required = new Set<string>();
  const optional = new Set<string>();
  const queue: Array<[string, boolean]> = [];
  const visit = (from: string, entry: LockEntry): void => {
    for (const [name, opt] of edges(entry)) {
      const at = resolveInLock(l, from, name);
      if (at) queue.push([at, opt]);
    }
  };
  visit('', { dependencies: root.dependencies, optionalDependencies: root.optionalDependencies });
  while (queue.length) {
    const [at, opt] = queue.shift()!;
    if (required.has(at) || (opt && optional.has(at))) continue;
    (opt ? optional : required).add(at);
    let entry = l.packages[at];
    // A workspace or `file:` link: its edges are those of the folder it points to.
    if (entry.link) entry = l.packages[(entry as { resolved?: string }).resolved ?? ''] ?? entry;
    visit(at, entry);
  }
  for (const [at, entry] of Object.entries(l.packages)) {
    if (at === '') continue;
    if (required.has(at)) {
      delete entry.dev;
      delete entry.devOptional;
      delete entry.optional;
    } else if (optional.has(at)) {
      delete entry.dev;
      delete entry.devOptional;
      entry.optional = true;
    }
  }
  return { manifest: m, lock: l };
}
