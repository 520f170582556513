// edge-infer's Node-RED nodes: a runtime config node, one node type per model in the models
// directory (registered again when a model appears while Node-RED runs), and admin endpoints.
import { ModelRegistry } from '../runtime/model';
import { bundledModelsDir } from '../runtime/paths';
import { modelSummaries, registerAdmin } from './admin';
import { registerModelNode } from './model-node';
import type { RED } from './red';
import { registerRuntimeNode } from './runtime-node';

/** settings.js: `edgeInfer: { modelsDir: '/path/to/models' }` (default: the example models). */
interface EdgeInferSettings {
  modelsDir?: string;
}

async function edgeInferNodes(RED: RED): Promise<void> {
  registerRuntimeNode(RED);
  const settings = (RED.settings.edgeInfer ?? {}) as EdgeInferSettings;
  const catalog = await ModelRegistry.open(settings.modelsDir ?? bundledModelsDir(), { watch: true });
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
}

export = edgeInferNodes;
