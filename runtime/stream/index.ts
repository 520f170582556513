// Sensor streams: spectra and the card's feature transforms (decoders, windows and the
// scheduler join them here).
export { magnitudeSpectrum, peakFrequency, amplitudeAt, nextPowerOfTwo } from './spectrum';
export type { Spectrum } from './spectrum';
export { computeFeatures, normalize } from './features';
export { SlidingWindow } from './window';
export type { Window } from './window';
export { readInputWindows, windowsFromChannels, parseSamplesCsv, nestedToTensor } from './input-files';
export type { InputWindow } from './input-files';
