// The gateway config's modelUpdates section: its defaults, and bad values named by field.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';

const base = { pipelines: [{ name: 'p', topic: 'plant/{device}/vibration', decoder: { kind: 'float32', channels: ['vib_x'] }, model: 'fault-classifier' }] };
const parse = (modelUpdates: unknown) => parseGatewayConfig({ ...base, modelUpdates }, 'gw.yaml');

describe('modelUpdates in the gateway config', () => {
  it('should be off unless given, and fill in its defaults when given', () => {
    expect(parseGatewayConfig(base).modelUpdates).toBeUndefined();
    expect(parse({})).toMatchObject({
      modelUpdates: { topic: 'edge-infer/models/{model}/update', status: 'edge-infer/models/{model}/status', qos: 1, maxBytes: 64 * 2 ** 20, watch: true, pollMs: 500, healthBatches: 3, agreement: { windows: 50, minWindows: 10, minLabelAgreement: 0.98 } },
    });
    expect(parse({ topic: false }).modelUpdates?.topic).toBe(false);
  });

  it('should take an ed25519 key as PEM or base64', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(parse({ publicKey: pem }).modelUpdates?.publicKey).toBe(pem);
    expect(parse({ publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') }).modelUpdates?.publicKey).toBeDefined();
  });

  it.each([
    [{ publicKey: 'hello!' }, /^gw\.yaml: modelUpdates\.publicKey: expected an ed25519 public key as PEM or base64/],
    [{ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString() }, /modelUpdates\.publicKey: expected an ed25519 public key, got a ec key/],
    [{ topic: 'edge-infer/models/update' }, /modelUpdates\.topic: .*expected a topic with one \{model\} level/],
    [{ status: 'edge-infer/+/{model}' }, /modelUpdates\.status: expected a topic with one \{model\} level and no wildcards/],
    [{ agreement: { windows: 5 } }, /modelUpdates\.agreement\.minWindows: expected at most windows \(5\), got 10/],
    [{ agreement: { minLabelAgreement: 2 } }, /modelUpdates\.agreement\.minLabelAgreement/],
    [{ healthBatches: 0 }, /modelUpdates\.healthBatches/],
    [{ maxBytes: 10 }, /modelUpdates\.maxBytes/],
    [{ watch: true, folder: 'x' }, /modelUpdates: unknown field 'folder'/],
  ])('should refuse %j naming the field', (value, message) => {
    expect(() => parse(value)).toThrow(message);
  });
});
