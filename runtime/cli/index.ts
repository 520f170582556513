// The edge-infer command line.
import { Command, CommanderError } from 'commander';
import { isEdgeInferError } from '../errors';
import { packageVersion } from '../paths';
import { registerBench } from './bench';
import { registerDemo } from './demo';
import { registerDeviceModel } from './device-model';
import { registerFineTune } from './fine-tune';
import { registerHashPassword } from './hash-password';
import { registerQuantize } from './quantize';
import { registerRun } from './run';
import { registerSimulate } from './simulate';
import { registerTeachIn } from './teach-in';
import { registerInfer } from './infer';
import { registerInspect } from './inspect';
import { oneLine } from './output';

export function buildProgram(): Command {
  const program = new Command('edge-infer')
    .description('Run quantized ONNX models on factory sensor streams, at the edge.')
    .version(packageVersion())
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`${oneLine(str)}\n`) });
  registerInspect(program);
  registerInfer(program);
  registerBench(program);
  registerQuantize(program);
  registerRun(program);
  registerSimulate(program);
  registerDemo(program);
  registerHashPassword(program);
  registerTeachIn(program);
  registerDeviceModel(program);
  registerFineTune(program);
  // Sub-commands inherit the one-line error handling.
  for (const cmd of program.commands) cmd.exitOverride().configureOutput({ outputError: (str, write) => write(`${oneLine(str)}\n`) });
  return program;
}

/**
 * Runs the command line; resolves to the exit code. A problem prints one line on stderr:
 * exit 2 for a bad command line, 1 for a bad file or a failure while working.
 */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, successfully.
      return err.exitCode === 0 ? 0 : 2;
    }
    const message = isEdgeInferError(err) || err instanceof Error ? err.message : String(err);
    process.stderr.write(`edge-infer: ${oneLine(message)}\n`);
    return 1;
  }
}
