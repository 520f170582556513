// Types for fft.js (radix-4 FFT, no dependencies), which ships none.
declare module 'fft.js' {
  class FFT {
    constructor(size: number);
    readonly size: number;
    createComplexArray(): number[];
    toComplexArray(input: ArrayLike<number>, storage?: number[]): number[];
    /** Forward transform of a real signal; fills the first half (+1) of `out` with complex bins. */
    realTransform(out: number[], input: ArrayLike<number>): void;
    completeSpectrum(spectrum: number[]): void;
    transform(out: number[], input: ArrayLike<number>): void;
    inverseTransform(out: number[], input: ArrayLike<number>): void;
  }
  export = FFT;
}
