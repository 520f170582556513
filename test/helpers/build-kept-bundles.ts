// `tsx test/helpers/build-kept-bundles.ts <fingerprint> <arch>...`: builds and keeps the bundles
// of these sources one after another, as test/helpers/prebuild-bundles.ts starts it in the
// background at the lowest CPU priority. Each arch is marked as building (this pid) while it
// builds, and marked as failed, with the error, when it does not build.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { type BundleArch, buildKept, buildingMarker, failedMarker, keptBundle, keptRoot } from './shared-bundle';

async function main(): Promise<void> {
  const [fingerprint, ...arches] = process.argv.slice(2) as [string, ...BundleArch[]];
  mkdirSync(keptRoot(), { recursive: true });
  // Every arch is marked at once: a test waiting for the second must not build it beside this.
  for (const arch of arches) if (!keptBundle(arch, fingerprint)) writeFileSync(buildingMarker(arch, fingerprint), String(process.pid));
  for (const arch of arches) {
    rmSync(failedMarker(arch, fingerprint), { force: true });
    try {
      if (!keptBundle(arch, fingerprint)) await buildKept(arch, fingerprint);
    } catch (err) {
      writeFileSync(failedMarker(arch, fingerprint), (err as Error).message);
    } finally {
      rmSync(buildingMarker(arch, fingerprint), { force: true });
    }
  }
}

void main();
