// When the suite starts building the deploy tests' bundles in the background: only when the run
// takes the deploy tests (the whole suite, or a filter that selects one of them).
import { describe, expect, it } from 'vitest';
import { runsDeployTests } from '../helpers/prebuild-bundles';

describe('runsDeployTests', () => {
  it('should say yes for the whole suite, as npm test runs it', () => {
    expect(runsDeployTests(['run'])).toBe(true);
    expect(runsDeployTests(['run', '--reporter=dot'])).toBe(true);
  });

  it('should say yes for a filter that selects a deploy test, and no for one that does not', () => {
    expect(runsDeployTests(['run', 'test/deploy/install.test.ts'])).toBe(true);
    expect(runsDeployTests(['run', 'bundle'])).toBe(true);
    expect(runsDeployTests(['run', './test/deploy'])).toBe(true);
    expect(runsDeployTests(['run', 'test/gateway/crash.test.ts'])).toBe(false);
    expect(runsDeployTests(['run', 'test/store', 'test/nodes'])).toBe(false);
    expect(runsDeployTests(['run', 'test/deploy/prebuild.test.ts'])).toBe(false);
  });
});
