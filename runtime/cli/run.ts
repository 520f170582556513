// `edge-infer run [--config gateway.yaml]`: the gateway. Without a config it starts on embedded
// defaults: a broker inside, the example models, and a simulated plant publishing on it.
import { type Command, Option } from 'commander';
import { type GatewayConfig, loadGatewayConfig } from '../gateway/config';
import { embeddedDefaults } from '../gateway/defaults';
import { Gateway } from '../gateway/gateway';
import { guardProcess } from '../gateway/guard';
import { serviceFor } from '../gateway/service';
import { isLoopback } from '../serve/auth';
import type { CommitUnit } from '../store';
import { PlantPublisher } from '../stream/plant-publisher';
import { EdgeInferError } from '../errors';
import { type Beside, startNodeRedBeside } from './node-red-beside';
import { positiveNumber, wholeNumber } from './options';
import { resolvePlant } from './plant';
import { print } from './output';

interface RunOptions {
  config?: string;
  httpPort?: number;
  httpHost?: string;
  brokerPort?: number;
  db?: string;
  speed?: number;
  seconds?: number;
  every: number;
  quiet?: boolean;
  /** false with --no-node-red. */
  nodeRed: boolean;
  nodeRedPort?: number;
  profile?: 'default' | 'sd';
}

/** Node-RED's port beside the gateway when --node-red-port is not given. */
export const DEFAULT_NODE_RED_PORT = 1880;

/** Latest result per device and model, printed as one line per device every few seconds. */
class Console {
  private readonly latest = new Map<string, Map<string, string>>();
  constructor(private readonly quiet: boolean) {}
  logged(unit: CommitUnit): void {
    for (const r of unit.results ?? []) {
      let row = this.latest.get(r.device);
      if (!row) this.latest.set(r.device, (row = new Map()));
      const text = r.label && r.label !== 'normal' && r.label !== 'anomaly' ? `${r.label} ${(r.score * 100).toFixed(0)}%` : `${r.label ?? ''} ${r.score.toPrecision(3)}`;
      row.set(r.model, `${r.model} ${text}${r.anomaly ? ' !' : ''}`);
    }
    for (const a of unit.alerts ?? []) print(`ALERT ${new Date(a.timeMs).toISOString().slice(11, 19)} ${a.message}`);
  }
  flush(): void {
    if (this.quiet) return;
    const t = new Date().toISOString().slice(11, 19);
    for (const [device, row] of [...this.latest].sort()) print(`${t} ${device.padEnd(14)} ${[...row.values()].sort().join(' │ ')}`);
  }
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the gateway: MQTT in, windows, inference, SQLite log, results out (no --config: embedded broker and a simulated plant)')
    .addOption(new Option('--config <file>', 'gateway config, YAML or JSON'))
    .addOption(new Option('--http-port <n>', 'HTTP port for /health and /metrics (overrides the config)').argParser(wholeNumber(0, 65535)))
    .addOption(new Option('--http-host <address>', 'address /health and /metrics listen on (overrides the config; default 127.0.0.1, this machine only; 0.0.0.0: every interface)'))
    .addOption(new Option('--broker-port <n>', 'port of the embedded broker').argParser(wholeNumber(0, 65535)))
    .addOption(new Option('--db <file>', 'database file (overrides the config)'))
    .addOption(new Option('--profile <name>', "how the log writes (overrides the config): 'sd' commits once a second for SD cards, 'default' every few ms").choices(['default', 'sd']))
    .addOption(new Option('--speed <x>', 'simulated plant: how much faster than real time').argParser(positiveNumber))
    .addOption(new Option('--seconds <s>', 'stop after this long (default: until Ctrl-C)').argParser(positiveNumber))
    .addOption(new Option('--every <s>', 'seconds between status lines').argParser(positiveNumber).default(5))
    .option('--quiet', 'print only alerts and problems')
    .addOption(new Option('--node-red-port <n>', `port of the Node-RED started beside the gateway on embedded defaults (default ${DEFAULT_NODE_RED_PORT}; its folder: ./edge-infer-node-red)`).argParser(wholeNumber(1, 65535)))
    .option('--no-node-red', 'do not start Node-RED beside the gateway')
    .action(async (opts: RunOptions) => {
      // First, before any child process could inherit NOTIFY_SOCKET and speak for the gateway.
      const service = serviceFor(process.env, (err) => process.stderr.write(`edge-infer: ${err instanceof Error ? err.message : String(err)}\n`));
      // Node-RED runs the example flows, which are wired for the embedded broker and the demo
      // plant: with a config of one's own they would listen to nothing (or the wrong thing).
      if (opts.config && opts.nodeRedPort !== undefined) throw new EdgeInferError('E_ARGUMENT', `--node-red-port: Node-RED starts beside the gateway on embedded defaults only (its example flows need the embedded broker and the simulated plant), and --config ${opts.config} was given`);
      const loaded = opts.config ? withOverrides(await loadGatewayConfig(opts.config), opts) : embeddedDefaults({ brokerPort: opts.brokerPort, httpPort: opts.httpPort, db: opts.db, speed: opts.speed });
      const hosted = opts.httpHost !== undefined ? { ...loaded, http: { ...loaded.http, host: httpHost(opts.httpHost) } } : loaded;
      const config = opts.profile ? { ...hosted, profile: opts.profile } : hosted;
      // The plant is resolved before anything starts, so that a wrong one stops nothing half-open.
      const plant = config.simulate ? await resolvePlant(config.simulate.plant) : undefined;
      const gateway = new Gateway(config, (err) => process.stderr.write(`edge-infer: ${err instanceof Error ? err.message : String(err)}\n`), { source: opts.config ?? 'embedded defaults' });
      const guard = guardProcess((err) => process.stderr.write(`edge-infer: ${err instanceof Error ? err.message : String(err)}\n`), gateway.metrics);
      const out = new Console(Boolean(opts.quiet));
      gateway.on('logged', (unit: CommitUnit) => out.logged(unit));
      await gateway.start();
      // Listened for from here on: a Ctrl-C while the plant or Node-RED starts stops everything
      // in order once they have started, instead of ending the process with Node-RED left running.
      const stopAsked = new Promise<void>((resolve) => {
        const done = (): void => resolve();
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
        if (opts.seconds) setTimeout(done, opts.seconds * 1000).unref();
      });
      let publisher: PlantPublisher | undefined;
      let publishing: Promise<unknown> | undefined;
      let ticker: NodeJS.Timeout | undefined;
      let nodeRed: Beside | undefined;
      try {
        print(`edge-infer gateway: broker ${gateway.brokerUrl}, log ${config.storage.path}, ${httpWhere(config.http.host, gateway.httpPort)}`);
        print(`  dashboard: ${gateway.dashboardUrl}${config.http.users?.length ? ` (login: ${config.http.users.length} user(s))` : ''}`);
        if (!config.http.users?.length && !isLoopback(config.http.host)) {
          process.stderr.write(`edge-infer: the dashboard listens on ${config.http.host}, reachable from the network, and no users are configured: it answers 403 until http.users is set (make a hash with \`edge-infer hash-password\`); /health and /metrics answer as before\n`);
        }
        for (const p of gateway.pipelines) print(`  ${p.name}: ${p.spec.topic} → ${p.card.id} [${p.variant.variant}, ${p.session.backend}] → ${p.spec.results}`);
        // Started: the log is open, the broker connected, HTTP listening.
        await service?.start(gateway, `running: broker ${gateway.brokerUrl}, ${gateway.pipelines.length} pipeline(s), log ${config.storage.path}`);
        if (config.simulate && plant) {
          publisher = new PlantPublisher(plant, { url: gateway.brokerUrl, speed: config.simulate.speed, clientId: 'edge-infer-simulated-plant' });
          await publisher.start();
          publishing = publisher.run();
          print(`  simulated plant '${plant.id}': ${plant.machines.length} machines publishing on ${gateway.brokerUrl} at ${config.simulate.speed}× real time`);
        }
        if (!opts.config && opts.nodeRed) {
          const broker = new URL(gateway.brokerUrl);
          nodeRed = await startNodeRedBeside({
            port: opts.nodeRedPort ?? DEFAULT_NODE_RED_PORT,
            brokerHost: broker.hostname,
            brokerPort: Number(broker.port),
            cwd: process.cwd(),
            say: (line) => print(line),
            complain: (line) => process.stderr.write(`${line}\n`),
          });
        }
        ticker = setInterval(() => out.flush(), opts.every * 1000);
        await stopAsked;
      } finally {
        await service?.stopping('stopping: logging what is queued');
        clearInterval(ticker);
        // Node-RED first: its flows are connected to the embedded broker the gateway closes.
        await nodeRed?.stop();
        await publisher?.stop();
        await publishing?.catch(() => undefined);
        await gateway.stop();
        guard.dispose();
      }
      print('edge-infer gateway: stopped; everything acknowledged is in the log');
    });
}

/** Command-line options over a config file; an option the config gives no place to is an error. */
function withOverrides(config: GatewayConfig, opts: RunOptions): GatewayConfig {
  if (opts.brokerPort !== undefined && !config.broker.embedded) throw new EdgeInferError('E_ARGUMENT', `--broker-port is the embedded broker's port, and ${opts.config} has no broker.embedded`);
  if (opts.speed !== undefined && !config.simulate) throw new EdgeInferError('E_ARGUMENT', `--speed is the simulated plant's speed, and ${opts.config} has no simulate section`);
  return {
    ...config,
    broker: opts.brokerPort !== undefined && config.broker.embedded ? { ...config.broker, embedded: { ...config.broker.embedded, port: opts.brokerPort } } : config.broker,
    http: opts.httpPort !== undefined ? { ...config.http, port: opts.httpPort } : config.http,
    storage: opts.db ? { ...config.storage, path: opts.db } : config.storage,
    simulate: config.simulate && opts.speed !== undefined ? { ...config.simulate, speed: opts.speed } : config.simulate,
  };
}

/** The --http-host value; an empty one would listen wherever Node chooses. */
function httpHost(value: string): string {
  if (value.trim() === '') throw new EdgeInferError('E_ARGUMENT', '--http-host: expected an address to listen on, such as 127.0.0.1 or 0.0.0.0, got an empty string');
  return value;
}

/** Where /health and /metrics listen, as the start-up line says it: the wildcard addresses say they are on every interface. */
export function httpWhere(host: string, port: number): string {
  const shown = host.includes(':') ? `[${host}]` : host;
  const every = host === '0.0.0.0' || host === '::' ? ' (every interface: reachable from the network)' : '';
  return `http://${shown}:${port}/health and /metrics${every}`;
}
