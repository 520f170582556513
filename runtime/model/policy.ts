// Which variant of a model to run: an exact variant name, or a rule that trades file size
// (memory, load time on a Pi) against the accuracy the card says the variant kept.
import { EdgeInferError } from '../errors';
import type { ModelCard, Precision } from './card';

export type Policy =
  /** That variant and no other (`fp32`, `int8`, `fp8-e4m3`, ...). */
  | { readonly kind: 'variant'; readonly variant: string }
  /** The smallest file. */
  | { readonly kind: 'smallest' }
  /** The smallest file whose card says it lost at most `points` of the task metric against fp32. */
  | { readonly kind: 'smallest-within'; readonly points: number }
  /** fp32, else the variant that kept the most of the metric. */
  | { readonly kind: 'most-accurate' };

/** What a policy needs to know of a variant; the registry's VariantEntry has it all. */
export interface PolicyCandidate {
  readonly variant: string;
  readonly precision: Precision;
  readonly sizeBytes: number;
  readonly card: ModelCard;
}

/** "Smallest within 1 point of fp32". */
export const DEFAULT_POLICY: Policy = Object.freeze({ kind: 'smallest-within', points: 1 });

const VARIANT_NAME = /^[a-z0-9][a-z0-9-]*$/;
const POLICY_HELP = 'expected a variant name (fp32, int8, ...), smallest, smallest-within:<points> or most-accurate';

/** Parses a policy as written in a flow, a config file or on the command line. */
export function parsePolicy(text: string): Policy {
  if (typeof text !== 'string') throw new EdgeInferError('E_ARGUMENT', `policy: ${POLICY_HELP}, got ${typeof text}`);
  const t = text.trim();
  if (t === 'smallest') return { kind: 'smallest' };
  if (t === 'most-accurate') return { kind: 'most-accurate' };
  if (t.startsWith('smallest-within')) {
    const m = /^smallest-within:(\d+(?:\.\d+)?)$/.exec(t);
    if (!m) throw new EdgeInferError('E_ARGUMENT', `policy '${text}': expected smallest-within:<points>, points a number ≥ 0 such as smallest-within:1`);
    return { kind: 'smallest-within', points: Number(m[1]) };
  }
  if (VARIANT_NAME.test(t)) return { kind: 'variant', variant: t };
  throw new EdgeInferError('E_ARGUMENT', `policy '${text}': ${POLICY_HELP}`);
}

/** The policy written the way parsePolicy reads it. */
export function formatPolicy(policy: Policy): string {
  switch (policy.kind) {
    case 'variant': return policy.variant;
    case 'smallest-within': return `smallest-within:${policy.points}`;
    default: return policy.kind;
  }
}

/** The card's metric change against fp32 in points (−0.8 = lost 0.8 points), if it says. */
function pointsVsFp32(c: PolicyCandidate): number | undefined {
  if (c.precision === 'fp32') return 0;
  const delta = c.card.quantization?.agreement?.metricDelta;
  return delta === undefined ? undefined : delta * 100;
}

// More bits keep more of the model: the tie-breaker when cards give no metric figures.
const PRECISION_RANK: Record<Precision, number> = { fp32: 5, fp16: 4, int8: 3, 'fp8-e4m3': 2, 'fp8-e5m2': 1 };

/** Orders variants most accurate first: fp32, then by metric kept, then by precision, then the larger file. */
function byAccuracy(a: PolicyCandidate, b: PolicyCandidate): number {
  const fp32 = Number(b.precision === 'fp32') - Number(a.precision === 'fp32');
  if (fp32 !== 0) return fp32;
  const pa = pointsVsFp32(a) ?? -Infinity;
  const pb = pointsVsFp32(b) ?? -Infinity;
  if (pa !== pb) return pb - pa;
  return PRECISION_RANK[b.precision] - PRECISION_RANK[a.precision] || b.sizeBytes - a.sizeBytes || a.variant.localeCompare(b.variant);
}

/**
 * The smallest variant; sizes within 2 % of the smallest count as equal, and of those the most
 * accurate wins (FP8 E4M3 and E5M2 files differ by a few bytes of card text). Measured from the
 * smallest, so that the pick does not depend on the order the variants come in.
 */
function smallest<T extends PolicyCandidate>(variants: readonly T[]): T {
  const least = Math.min(...variants.map((v) => v.sizeBytes));
  return variants.filter((v) => v.sizeBytes <= least * 1.02).sort(byAccuracy)[0];
}

// Rounding slack: 0.007 × 100 is 0.7000000000000001, and "within 0.7" should keep it.
const SLACK_POINTS = 1e-9;

function withinPoints<T extends PolicyCandidate>(variants: readonly T[], points: number): T {
  const fits = variants.filter((v) => {
    const p = pointsVsFp32(v);
    return p !== undefined && p >= -points - SLACK_POINTS;
  });
  if (fits.length > 0) return smallest(fits);
  const why = variants.map((v) => {
    const p = pointsVsFp32(v);
    return p === undefined ? `${v.variant} has no quantization.agreement.metricDelta on its card` : `${v.variant} is ${(-p).toFixed(2)} points below fp32`;
  });
  throw new EdgeInferError('E_REGISTRY', `model '${variants[0].card.id}': no variant is within ${points} point${points === 1 ? '' : 's'} of fp32 (${why.join('; ')})`);
}

/** Picks one variant of a model by the policy; E_REGISTRY when none fits, saying why. */
export function pickVariant<T extends PolicyCandidate>(variants: readonly T[], policy: Policy | string = DEFAULT_POLICY): T {
  const p = typeof policy === 'string' ? parsePolicy(policy) : policy;
  if (variants.length === 0) throw new EdgeInferError('E_REGISTRY', `no variants to pick from with policy ${formatPolicy(p)}`);
  switch (p.kind) {
    case 'variant': {
      const found = variants.find((v) => v.variant === p.variant);
      if (found) return found;
      const names = variants.map((v) => v.variant).sort();
      throw new EdgeInferError('E_REGISTRY', `model '${variants[0].card.id}' has no variant '${p.variant}' (it has ${names.join(', ')})`);
    }
    case 'smallest': return smallest(variants);
    case 'most-accurate': return [...variants].sort(byAccuracy)[0];
    case 'smallest-within': return withinPoints(variants, p.points);
  }
}
