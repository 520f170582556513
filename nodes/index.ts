// edge-infer's Node-RED nodes: a runtime config node, one node type per model in the models
// directory (registered again when a model appears while Node-RED runs), admin endpoints, and the
// dashboard at <httpNodeRoot>/edge-infer/.
import { modelSummaries, registerAdmin } from './admin';
import { ModelCatalog } from './catalog';
import { registerDashboard } from './dashboard';
import { registerModelNode } from './model-node';
import type { RED } from './red';
import { defaultDb, registerRuntimeNode } from './runtime-node';

/**
 * settings.js: `edgeInfer: { modelsDir: '/path/to/models' }`. Default: the example models, with
 * the variants quantized on this gateway in `<userDir>/edge-infer-models`.
 */
interface EdgeInferSettings {
  modelsDir?: string;
}

async function edgeInferNodes(RED: RED): Promise<void> {
  registerRuntimeNode(RED);
  const settings = (RED.settings.edgeInfer ?? {}) as EdgeInferSettings;
  let catalog: ModelCatalog;
  try {
    catalog = await ModelCatalog.open(settings.modelsDir, RED.settings.userDir ?? process.cwd(), (m) => RED.log.warn(`edge-infer: ${m}`));
  } catch (err) {
    // A wrong path must not take the runtime config node (and the flows that name it) down too.
    RED.log.error(`edge-infer: settings.js edgeInfer.modelsDir: ${err instanceof Error ? err.message : String(err)}; no model nodes are registered until it names a models directory and Node-RED restarts`);
    catalog = ModelCatalog.empty();
  }
  for (const broken of catalog.errors()) RED.log.warn(`edge-infer: ${broken.error.message}`);
  const registered = new Set<string>();
  const registerNew = (): void => {
    for (const m of catalog.models()) {
      if (registered.has(m.id)) continue;
      registerModelNode(RED, catalog, m.id);
      registered.add(m.id);
    }
  };
  registerNew();
  // A model added (or a variant made) while Node-RED runs: its type is registered now, and the
  // editors hear of it on this topic and add it to their palettes.
  const announce = (): void => {
    registerNew();
    RED.comms.publish('edge-infer/models', modelSummaries(catalog), true);
  };
  catalog.on('added', announce);
  catalog.on('changed', announce);
  catalog.on('removed', announce);
  catalog.on('repaired', announce);
  catalog.on('broken', (b: { error: Error }) => RED.log.warn(`edge-infer: ${b.error.message}`));
  registerAdmin(RED, catalog);
  registerDashboard(RED, defaultDb(RED));
}

export = edgeInferNodes;
