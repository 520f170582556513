// Errors of the bundle build: a machine-readable code beside a one-line message that names the
// file, the command or the argument at fault.

export type BundleErrorCode =
  | 'E_ARGUMENT' // a bad option or value
  | 'E_BUNDLE_INPUT' // the repository is not ready to bundle (not built, lockfile missing)
  | 'E_BUNDLE_COMMAND' // a command the build runs failed (npm, node-gyp, tar)
  | 'E_BUNDLE_INTEGRITY' // a downloaded package does not match the registry's integrity
  | 'E_BUNDLE_ARCH'; // a native file is not built for the target

export class BundleError extends Error {
  constructor(
    readonly code: BundleErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BundleError';
  }
}
