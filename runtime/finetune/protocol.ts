// What the fine-tune's main thread and its training thread say to each other.

export interface TrainRequest {
  /** Training and held-out features, raw (as the graph takes them), concatenated: count × width. */
  train: Float32Array;
  heldOut: Float32Array;
  width: number;
  mean: Float32Array;
  std: Float32Array;
  layers: Array<{ w: Float32Array; b: Float32Array; inDim: number; outDim: number; relu: boolean }>;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

export type TrainReply =
  | { type: 'progress'; phase: 'train'; epoch: number; epochs: number; loss: number }
  | { type: 'done'; layers: Array<{ w: Float32Array; b: Float32Array }>; lossBefore: number; lossAfter: number; heldOutLossBefore: number; heldOutLossAfter: number; backend: string }
  | { type: 'error'; message: string };
