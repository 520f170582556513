// api/device-models behind the dashboard's rules, over real HTTP on a real log with the gateway's
// own DeviceModelManager (no pipeline: every model is "not served here"): the list to whoever may
// look, set and clear only to a named user, methods and routes checked, and 404 where a host has
// no device models.
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceModelManager } from '../../runtime/gateway/device-models';
import { ResultStore } from '../../runtime/store';
import { type Served, request, serveDashboard, tempDir } from './dashboard-helpers';

const T0 = 1_700_000_000_000;
let store: ResultStore;
let served: Served | undefined;
let manager: DeviceModelManager;

beforeEach(() => {
  store = ResultStore.open({ path: path.join(tempDir(), 'log.db'), batchMs: 1 });
  manager = new DeviceModelManager({ pipelines: [], store, policyOf: () => 'fp32', load: () => Promise.reject(new Error('never loaded')), report: () => undefined, now: () => T0 });
});

afterEach(async () => {
  await served?.close();
  served = undefined;
  await store.close();
});

const access = () => ({ set: (d: unknown, m: unknown, f: unknown) => manager.set(d, m, f), clear: (d: unknown, m: unknown) => manager.clear(d, m), list: () => manager.list() });

describe('api/device-models', () => {
  it('should list to a visitor its host does not name, and set or clear only for a named user', async () => {
    let user: string | null = null;
    served = await serveDashboard(store, { deviceModels: access(), host: 'node-red', auth: () => user });
    const { port } = served;
    // The log's rows are the list, as a restart would find them.
    store.deviceModels().add({ device: 'press-1', model: 'vibration-anomaly', folder: '/models/press-1', variant: 'int8', sha256: 'ab'.repeat(32), state: 'rolled-back', sinceMs: T0, reason: 'it failed a batch' });
    expect((await request(port, 'GET', '/api/device-models')).json()).toEqual({
      deviceModels: [{ device: 'press-1', model: 'vibration-anomaly', state: 'rolled-back', folder: '/models/press-1', variant: 'int8', sha256: 'ab'.repeat(32), threshold: null, since: new Date(T0).toISOString(), reason: 'it failed a batch' }],
    });
    const body = { device: 'press-1', model: 'vibration-anomaly', folder: '/models/press-1' };
    expect(await request(port, 'POST', '/api/device-models/set', { body })).toMatchObject({ status: 401, text: JSON.stringify({ error: "api/device-models/set: setting and clearing a device's model needs a logged-in user" }) });
    user = 'nodered-admin';
    expect(await request(port, 'POST', '/api/device-models/set', { body })).toMatchObject({ status: 404, text: JSON.stringify({ error: "device-model set: model 'vibration-anomaly' is not served here (served: )", code: 'E_NOT_FOUND' }) });
    expect(await request(port, 'POST', '/api/device-models/clear', { body: { device: 'press-1' } })).toMatchObject({ status: 400, text: JSON.stringify({ error: 'device-model clear: model: expected a name, got none', code: 'E_ARGUMENT' }) });
    expect(await request(port, 'POST', '/api/device-models/set', { body: { ...body, device: 'x'.repeat(300) } })).toMatchObject({ status: 400, text: JSON.stringify({ error: 'device-model set: device: expected at most 256 characters, got 300', code: 'E_ARGUMENT' }) });
    expect(await request(port, 'POST', '/api/device-models/set', { body: { ...body, folder: 7 } })).toMatchObject({ status: 400, text: JSON.stringify({ error: "device-model set: folder: expected the device's model folder, got 7", code: 'E_ARGUMENT' }) });
    expect((await request(port, 'POST', '/api/device-models/set', { body: '[1]' })).status).toBe(400);
    expect(await request(port, 'GET', '/api/device-models/set')).toMatchObject({ status: 405, text: JSON.stringify({ error: 'api/device-models/set: expected POST, got GET', code: 'E_ARGUMENT' }) });
    expect(await request(port, 'POST', '/api/device-models', { body })).toMatchObject({ status: 405, text: JSON.stringify({ error: 'api/device-models: expected GET, got POST', code: 'E_ARGUMENT' }) });
    expect(await request(port, 'POST', '/api/device-models/swap', { body })).toMatchObject({ status: 404, text: JSON.stringify({ error: 'api/device-models/swap: no such route (device-models/set, device-models/clear)', code: 'E_NOT_FOUND' }) });
  });

  it('should answer 404 where the host has no device models', async () => {
    served = await serveDashboard(store);
    expect(await request(served.port, 'GET', '/api/device-models')).toMatchObject({ status: 404, text: JSON.stringify({ error: 'api/device-models: device models are not available here', code: 'E_NOT_FOUND' }) });
  });
});
