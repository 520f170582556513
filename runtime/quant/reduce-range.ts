// Whether int8 weights should use 7 bits. onnxruntime's x86 integer kernels for AVX2 and AVX-512
// without VNNI multiply uint8 activations by int8 weights with VPMADDUBSW, which adds each pair
// of products into an int16 and saturates: 2 × 255 × 127 = 64770 does not fit in 32767, so
// large activations meeting large weights of one sign come out clipped. Weights within ±64 keep
// every pair within 2 × 255 × 64 = 32640 (onnxruntime's quantizer calls this reduce_range). VNNI
// (VPDPBUSD) accumulates in int32, ARM kernels widen first, and onnxruntime's WebAssembly kernels
// widen to int16 before multiplying (i32x4.dot_i16x8_s): none of them saturate.
import { readFileSync } from 'node:fs';
import { availableBackends } from '../engine';

/** What decides it: the CPU architecture, its feature flags (null when unknown), and whether onnxruntime-node runs here. */
export interface HostCpu {
  arch: string;
  flags: readonly string[] | null;
  native: boolean;
}

/**
 * True when int8 models made for this host should keep weights within ±64: x86 with onnxruntime-node
 * (the WebAssembly build never saturates), AVX2 or AVX-512 and no VNNI. Unknown flags on x86 count
 * as no VNNI: a slightly coarser weight costs less than a saturated sum.
 */
export function reduceRangeFor(host: HostCpu): boolean {
  if ((host.arch !== 'x64' && host.arch !== 'ia32') || !host.native) return false;
  if (host.flags === null) return true;
  const has = (f: string): boolean => host.flags!.includes(f);
  if (has('avx512_vnni') || has('avx_vnni')) return false;
  return has('avx2') || has('avx512bw');
}

/** This machine's CPU flags from /proc/cpuinfo (Linux), or null elsewhere. */
function cpuFlags(): string[] | null {
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return line ? line[1].trim().split(/\s+/) : null;
  } catch {
    return null;
  }
}

let cached: boolean | undefined;

/** reduceRangeFor this machine: the default when a quantization does not say. */
export function defaultReduceRange(): boolean {
  cached ??= reduceRangeFor({ arch: process.arch, flags: cpuFlags(), native: availableBackends().includes('native') });
  return cached;
}
