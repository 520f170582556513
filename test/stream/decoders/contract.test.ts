// The decoder contract, run against every decoder configuration in fixtures.ts.
import { describeDecoderContract } from './contract';
import { FIXTURES } from './fixtures';

for (const fixture of FIXTURES) describeDecoderContract(fixture);
