// The edge-infer command from TypeScript sources, for tests that run it as a child process.
import { main } from '../../runtime/cli';

main(process.argv).then((code) => {
  process.exitCode = code;
});
