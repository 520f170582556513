// Update and status topics: the {model} level filled in, turned into a filter, read back.
import { describe, expect, it } from 'vitest';
import { modelFilter, modelOfTopic, modelTopic, statusOf } from '../../runtime/hotswap';

describe('model topics', () => {
  it('should fill in, filter and read back the model id', () => {
    expect(modelTopic('edge-infer/models/{model}/status', 'fault-classifier')).toBe('edge-infer/models/fault-classifier/status');
    expect(modelFilter('edge-infer/models/{model}/update')).toBe('edge-infer/models/+/update');
    expect(modelOfTopic('edge-infer/models/{model}/update', 'edge-infer/models/fault-classifier/update')).toBe('fault-classifier');
  });

  it('should say a topic of another shape is not an update topic', () => {
    for (const t of ['edge-infer/models/fault-classifier/status', 'edge-infer/models/update', 'edge-infer/models//update', 'plant/pump-1/vibration']) {
      expect(modelOfTopic('edge-infer/models/{model}/update', t)).toBeUndefined();
    }
  });

  it('should publish a step as JSON with an ISO time', () => {
    expect(statusOf({ timeMs: 0, model: 'm', pipeline: 'p', variant: 'int8', sha256: 'ab', source: 'mqtt:t', state: 'refused', reason: 'why' })).toEqual({
      model: 'm', pipeline: 'p', variant: 'int8', sha256: 'ab', source: 'mqtt:t', state: 'refused', reason: 'why', time: '1970-01-01T00:00:00.000Z',
    });
  });
});
