import { describe, expect, it } from 'vitest';
import { accuracy, argmax, confusionMatrix, outputAgreement, quantile, rocAuc } from '../../runtime/eval';

describe('metrics', () => {
  it('should find the largest value of a row', () => {
    expect(argmax([0.1, 0.7, 0.2])).toBe(1);
    expect(argmax([1, 0, 0, 0, 0, 9], 3, 1)).toBe(2);
  });

  it('should count accuracy and refuse mismatched lengths', () => {
    expect(accuracy([0, 1, 2, 2], [0, 1, 1, 2])).toBe(0.75);
    expect(() => accuracy([0], [0, 1])).toThrow(/1 predictions for 2 labels/);
    expect(() => accuracy([], [])).toThrow(/no predictions/);
  });

  it('should tabulate a confusion matrix by truth then prediction', () => {
    expect(confusionMatrix([0, 1, 1], [0, 0, 1], 2)).toEqual([[1, 1], [0, 1]]);
  });

  it('should give ROC AUC 1 for perfect separation, 0.5 for ties and count ties half', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [false, true, false, true])).toBe(0.5);
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
    expect(() => rocAuc([1, 2], [true, true])).toThrow(/both positive and negative/);
  });

  it('should interpolate quantiles and refuse q outside 0..1', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(() => quantile([1], 2)).toThrow(/within 0\.\.1/);
    expect(() => quantile([], 0.5)).toThrow(/no values/);
  });

  it('should measure agreement of two outputs', () => {
    const a = outputAgreement([1, 0, 0], [0.9, 0.1, 0]);
    expect(a.cosine).toBeCloseTo(0.9 / Math.sqrt(0.82), 6);
    expect(a.maxAbsError).toBeCloseTo(0.1, 6);
    expect(a.meanAbsError).toBeCloseTo(0.2 / 3, 6);
    expect(outputAgreement([0, 0], [0, 0]).cosine).toBe(1);
    expect(() => outputAgreement([1], [1, 2])).toThrow(/differ in length/);
  });
});
