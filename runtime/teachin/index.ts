// runtime/teachin: each machine its own normal. A teach-in learns a device's healthy scores and
// derives its own threshold; the gateway's pipelines and the Node-RED model nodes judge by it.
export { deriveThreshold, quantileOf, taughtScore, checkRule, checkConsecutive, runMinima } from './derive';
export type { ThresholdRule, ThresholdRuleName, DerivedThreshold } from './derive';
export { TeachIn, TEACH_IN_DEFAULTS, RUN_MARGIN_DEFAULT, checkTarget } from './teach-in';
export type { BaselineState, TeachInSettings, TeachInStatus, TeachInTarget, TeachInHooks } from './teach-in';
