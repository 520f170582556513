// Options that name a simulated machine, its faults or a plant, shared by `simulate`, `demo` and `run`.
import { InvalidArgumentError } from 'commander';
import { type DeviceProfile, FAULT_TYPES, type FaultSpec, type Plant, loadPlant, loadProfile, plantById, profileById } from '../../devices';

/** A built-in profile id, or a profile JSON file. */
export async function resolveProfile(value: string): Promise<DeviceProfile> {
  return value.endsWith('.json') || value.includes('/') ? loadProfile(value) : profileById(value);
}

/** A built-in plant id, or a plant JSON file. */
export async function resolvePlant(value: string): Promise<Plant> {
  return value.endsWith('.json') || value.includes('/') ? loadPlant(value) : plantById(value);
}

/**
 * `bearing,onset=10,severity=0.6,ramp=30,location=inner` → a FaultSpec. Commander collects
 * repeated --fault options through `previous`.
 */
export function faultOption(value: string, previous: FaultSpec[] = []): FaultSpec[] {
  const [type, ...pairs] = value.split(',').map((p) => p.trim());
  if (!(FAULT_TYPES as readonly string[]).includes(type)) throw new InvalidArgumentError(`the fault type comes first, one of ${FAULT_TYPES.join(', ')}`);
  const fault: FaultSpec = { type: type as FaultSpec['type'], onsetS: 0, severity: 0.5 };
  for (const pair of pairs) {
    const [key, raw] = pair.split('=');
    const n = Number(raw);
    const number = (): number => {
      if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${key}: expected a number ≥ 0, got '${raw ?? ''}'`);
      return n;
    };
    if (key === 'onset') fault.onsetS = number();
    else if (key === 'severity') {
      if (number() > 1) throw new InvalidArgumentError(`severity: expected 0..1, got ${raw}`);
      fault.severity = n;
    } else if (key === 'ramp') fault.rampS = number();
    else if (key === 'location' && type === 'bearing' && ['outer', 'inner', 'ball'].includes(raw)) fault.location = raw as FaultSpec['location'];
    else throw new InvalidArgumentError(`'${pair}' is not onset=<s>, severity=<0..1>, ramp=<s>${type === 'bearing' ? ' or location=outer|inner|ball' : ''}`);
  }
  return [...previous, fault];
}
