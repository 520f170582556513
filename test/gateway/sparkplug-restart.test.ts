// Sparkplug B across a gateway restart: the latest NBIRTH and DBIRTHs stay in the journal until a
// newer birth or a death replaces them, so DATA after the restart decodes without a rebirth; and a
// rebirth the replay finds it needs is asked for once the broker connection is up.
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import type { GatewayConfig } from '../../runtime/gateway/config';
import { ResultStore } from '../../runtime/store';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { client, waitFor } from '../helpers/gateway';
import { speedTableConfig } from '../helpers/speed-models';
import { encodePayload, rawData } from '../stream/decoders/sparkplug-helpers';

const T0 = 1_700_000_000_000;
const nbirth = (seq: number, bdSeq = 0) => Buffer.from(encodePayload({ timestamp: T0, seq, metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] }));
const ndeath = (bdSeq = 0) => Buffer.from(encodePayload({ timestamp: T0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] }));
const dbirth = (seq: number) => Buffer.from(encodePayload({ timestamp: T0, seq, metrics: [{ name: 'Speed', alias: 7, type: 'Float', value: 0 }] }));
const ddata = (seq: number, speed: number, at: number) => Buffer.from(rawData(seq, [{ alias: 7, floatValue: speed }], at));

function sparkplugConfig(brokerUrl: string): GatewayConfig {
  const pipeline = { name: 'sparkplug', topic: 'spBv1.0/plant/#', decoder: { kind: 'sparkplug', channels: { Speed: 'speed' } }, model: 'speed-table' };
  return speedTableConfig({ url: brokerUrl, protocol: 4, clientId: `gw-spb-${Math.random().toString(36).slice(2, 8)}`, reconnectMs: 200 }, [pipeline], 'sparkplug config');
}

describe('Sparkplug B and a gateway restart', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  afterEach(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
    pub = gateway = broker = undefined;
  });

  const send = (topic: string, payload: Buffer): Promise<void> => new Promise((resolve, reject) => pub!.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  const journalTopics = () => gateway!.log.pendingJournal('sparkplug').map((r) => r.topic);

  it('should decode DATA after a restart with the births from before it, and let a newer birth or a death replace them', async () => {
    broker = await startAedes();
    const config = sparkplugConfig(broker.url);
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    pub = await client(broker.url);
    await send('spBv1.0/plant/NBIRTH/edge-1', nbirth(0));
    await send('spBv1.0/plant/DBIRTH/edge-1/pump-1', dbirth(1));
    await send('spBv1.0/plant/DDATA/edge-1/pump-1', ddata(2, 1, T0 + 1000));
    await waitFor(() => gateway!.log.counts().results === 1, 10_000, 'the first result');
    await gateway.pipelines[0].drain();
    expect(journalTopics()).toEqual(['spBv1.0/plant/NBIRTH/edge-1', 'spBv1.0/plant/DBIRTH/edge-1/pump-1']);
    await gateway.stop();

    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    // Messages 3..9 went to another gateway meanwhile (or were lost): the seq is picked up as it comes.
    await send('spBv1.0/plant/DDATA/edge-1/pump-1', ddata(10, 2, T0 + 2000));
    await waitFor(() => gateway!.log.counts().results === 2, 10_000, 'the result after the restart');
    expect(gateway.log.counts().deadLetters).toBe(0);
    expect(gateway.log.latestPerDevice()[0]).toMatchObject({ device: 'pump-1', score: 20 });

    // A newer DBIRTH replaces the old one; an NDEATH ends them all.
    await send('spBv1.0/plant/DBIRTH/edge-1/pump-1', dbirth(11));
    await waitFor(() => journalTopics().length === 2 && Buffer.from(gateway!.log.pendingJournal('sparkplug')[1].payload).equals(dbirth(11)), 5000, 'the newer DBIRTH in place of the old');
    await send('spBv1.0/plant/NDEATH/edge-1', ndeath());
    await waitFor(() => journalTopics().length === 0, 5000, 'the births to go with the NDEATH');
  });

  it('should ask a node to rebirth once connected when the replay meets DATA it cannot read', async () => {
    broker = await startAedes();
    const config = sparkplugConfig(broker.url);
    // A DATA left in the journal by a run that never kept its node's births.
    const store = ResultStore.open({ path: config.storage.path });
    store.journal([{ pipeline: 'sparkplug', key: 'orphan', topic: 'spBv1.0/plant/DDATA/stranger/pump-9', payload: ddata(5, 1, T0), receivedMs: Date.now() }]);
    await store.close();
    const commands: string[] = [];
    const node = await client(broker.url);
    node.on('message', (topic) => commands.push(topic));
    await new Promise((r) => node.subscribe('spBv1.0/plant/NCMD/#', { qos: 0 }, r));
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    await waitFor(() => commands.includes('spBv1.0/plant/NCMD/stranger'), 5000, "the rebirth request (NCMD 'Node Control/Rebirth')");
    expect(gateway.log.deadLetters()[0].reason).toMatch(/rebirth/);
    node.end(true);
  });
});
