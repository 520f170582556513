// The one-command gateway (`npm start`, `edge-infer run` without a config): an embedded broker,
// the example models on the demo plant's vibration, a log in the working folder, and the plant
// itself simulated and published on the embedded broker.
import { type GatewayConfig, parseGatewayConfig } from './config';

const VIBRATION = { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' } as const;

export function embeddedDefaults(overrides: { brokerPort?: number; httpPort?: number; db?: string; speed?: number } = {}): GatewayConfig {
  return parseGatewayConfig(
    {
      // A first gateway is often a Raspberry Pi on an SD card: one commit a second (see README).
      profile: 'sd',
      // aedes speaks MQTT 3.1.1.
      broker: { embedded: { port: overrides.brokerPort ?? 1883 }, protocol: 4, clientId: 'edge-infer-gateway' },
      storage: { path: overrides.db ?? 'edge-infer.db' },
      http: { port: overrides.httpPort ?? 8080, host: '127.0.0.1' },
      pipelines: [
        { name: 'vibration-anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'vibration-anomaly' },
        { name: 'fault-classifier', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'fault-classifier' },
        { name: 'fault-transformer', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'fault-transformer', hop: 1024 },
      ],
      simulate: { plant: 'demo', speed: overrides.speed ?? 1 },
    },
    'embedded defaults',
  );
}
