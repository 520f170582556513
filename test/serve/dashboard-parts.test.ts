// The dashboard's small parts on their own: which error becomes which status, which page names
// map to files (none outside the page's folder), alert ids from the path, the session cookie in a
// request, a model's static view from its real card, and createDashboard's option checks.
import type { IncomingMessage } from 'node:http';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { ModelRegistry, bundledModelsDir } from '../../runtime';
import { alertId } from '../../runtime/serve/api';
import { sessionToken } from '../../runtime/serve/auth';
import { createDashboard } from '../../runtime/serve/dashboard';
import { modelStaticOf } from '../../runtime/serve/model-views';
import { ApiFailure, failureOf, securityHeaders } from '../../runtime/serve/respond';
import { pageFile } from '../../runtime/serve/static';
import { StoreError } from '../../runtime/store';

describe('failureOf', () => {
  it('should map the runtime\'s codes to the contract\'s statuses, with Retry-After where a retry helps', () => {
    expect(failureOf(new EdgeInferError('E_ARGUMENT', 'from: expected a time'))).toEqual({ status: 400, body: { error: 'from: expected a time', code: 'E_ARGUMENT' } });
    expect(failureOf(new EdgeInferError('E_NOT_FOUND', 'alert 9: no such alert'))).toMatchObject({ status: 404 });
    for (const code of ['E_BUSY', 'E_QUERY_TIMEOUT'] as const) expect(failureOf(new EdgeInferError(code, 'later'))).toEqual({ status: 503, body: { error: 'later', code }, retryAfterS: 2 });
    expect(failureOf(new StoreError('E_STORE_CLOSED', 'closed'))).toMatchObject({ status: 503, retryAfterS: 2 });
    expect(failureOf(new StoreError('E_STORE_WRITE', 'locked'))).toMatchObject({ status: 503, retryAfterS: 2 });
    expect(failureOf(new EdgeInferError('E_INTERNAL', 'bug'))).toEqual({ status: 500, body: { error: 'bug', code: 'E_INTERNAL' } });
    expect(failureOf(new Error('plain'))).toEqual({ status: 500, body: { error: 'plain' } });
    expect(failureOf(new ApiFailure(429, 'wait', undefined, 30))).toEqual({ status: 429, body: { error: 'wait' }, retryAfterS: 30 });
  });
});

describe('securityHeaders', () => {
  it('should forbid framing on the gateway and allow its own origin inside Node-RED', () => {
    expect(securityHeaders('gateway')['content-security-policy']).toMatch(/frame-ancestors 'none'$/);
    expect(securityHeaders('gateway')['x-frame-options']).toBe('DENY');
    expect(securityHeaders('node-red')['content-security-policy']).toMatch(/frame-ancestors 'self'$/);
  });
});

describe('pageFile', () => {
  const dir = path.resolve('/srv/page');
  it('should map plain names inside the folder', () => {
    expect(pageFile(dir, 'app.js')).toBe(path.join(dir, 'app.js'));
    expect(pageFile(dir, 'assets/uPlot.min.css')).toBe(path.join(dir, 'assets', 'uPlot.min.css'));
  });
  for (const name of ['', '..', '../x', 'a/../../x', '%2e%2e/x', 'a%2fb', '/etc/passwd', 'a\\..\\b', 'a\0b', '.env', 'assets/', 'a//b', 'x..y/..']) {
    it(`should refuse ${JSON.stringify(name)}`, () => {
      expect(pageFile(dir, name)).toBeNull();
    });
  }
});

describe('alertId', () => {
  it('should take whole numbers ≥ 1 and refuse the rest, naming the id', () => {
    expect(alertId('42')).toBe(42);
    for (const bad of ['0', '-1', '1.5', '1e3', 'abc', '01', '99999999999999999']) expect(() => alertId(bad), bad).toThrow(/^alert id: expected a whole number ≥ 1/);
  });
});

describe('sessionToken', () => {
  const req = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie } }) as IncomingMessage;
  it('should find the session cookie among others, and nothing without one', () => {
    expect(sessionToken(req('a=1; edge_infer_session=tok-en_1; b=2'))).toBe('tok-en_1');
    expect(sessionToken(req('edge_infer_session_x=1'))).toBeUndefined();
    expect(sessionToken(req())).toBeUndefined();
  });
});

describe('modelStaticOf', () => {
  it("should take the title, task, threshold, labels and the card's agreement of a real variant", async () => {
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    try {
      const int8 = registry.pick('fault-classifier', 'int8');
      const view = modelStaticOf({ pipeline: 'classifier', card: int8.card, variant: int8.variant, bytes: int8.sizeBytes, backend: 'wasm' });
      expect(view).toEqual({
        pipeline: 'classifier', model: 'fault-classifier', title: int8.card.title, task: 'classification', variant: 'int8', precision: 'int8', bytes: int8.sizeBytes, backend: 'wasm',
        threshold: 0.5, labels: int8.card.output.labels, cardAgreement: 0.999,
      });
      const fp32 = registry.pick('vibration-anomaly', 'fp32');
      expect(modelStaticOf({ pipeline: null, card: fp32.card, variant: 'fp32', bytes: 1, backend: null })).toMatchObject({ task: 'anomaly', labels: null, cardAgreement: null, threshold: fp32.card.output.threshold });
    } finally {
      await registry.close();
    }
  });
});

describe('createDashboard options', () => {
  const reader = { query: () => Promise.resolve([]) } as never;
  const alerts = { acknowledge: () => undefined, clear: () => undefined } as never;
  const ok = { reader, alerts, models: () => [], auth: { listen: '127.0.0.1' }, host: 'gateway' as const };
  it('should refuse missing or wrong options, naming them', () => {
    expect(() => createDashboard({ ...ok, reader: undefined as never })).toThrow(/^dashboard: reader: expected an open LogReader/);
    expect(() => createDashboard({ ...ok, alerts: {} as never })).toThrow(/^dashboard: alerts: expected/);
    expect(() => createDashboard({ ...ok, models: [] as never })).toThrow(/^dashboard: models: expected a function/);
    expect(() => createDashboard({ ...ok, host: 'apache' as never })).toThrow("dashboard: host: expected 'gateway' or 'node-red', got apache");
    expect(() => createDashboard({ ...ok, auth: undefined as never })).toThrow(/^dashboard: auth: expected/);
    const d = createDashboard(ok);
    expect(d.mode).toBe('open');
    d.close();
  });
});
