// Devices: machine profiles and physics-based sensor simulators with fault injection. Other
// folders import only this file.
export { MACHINE_LABELS, BEARING_LOCATIONS, FAULT_TYPES } from './faults';
export type { MachineLabel, FaultType, BearingLocation, FaultSpec } from './faults';
export { DeviceProfileSchema, parseProfile, parseProfileJson, loadProfile, builtinProfiles, profileById, TRAINING_PROFILE_IDS, trainingProfiles } from './profile';
export type { DeviceProfile, DeviceProfileInput, DeviceStream, DeviceChannel, SignalKind, BearingGeometry } from './profile';
export { bearingFrequencies } from './bearing';
export type { BearingFrequencies } from './bearing';
export { MachineSimulator } from './simulator';
export type { SimulatorOptions } from './simulator';
export { renderWindow } from './window';
export type { WindowSpec } from './window';
export type { SampleBlock } from './stream';
export { Random, hashSeed } from './random';
export { PlantSchema, parsePlant, parsePlantJson, loadPlant, builtinPlants, plantById, plantTopic, publishedStreams, PLANT_TOPIC_FIELDS } from './plant';
export type { Plant, PlantInput, PlantMachine } from './plant';
