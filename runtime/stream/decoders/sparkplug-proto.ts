// The Sparkplug B protobuf, read with the generated message classes of sparkplug-payload rather
// than its decodePayload: decodePayload reads a value only through the metric's datatype, and
// DATA metrics normally carry no datatype (it was given once, in the BIRTH).
import * as proto from 'sparkplug-payload/lib/sparkplugPayloadProto';

/** protobufjs gives uint64 fields as Long objects (or plain numbers without the long package). */
export type UInt64 = number | { low: number; high: number; toString(): string };

/** The fields of a decoded metric that the decoder reads; presence is own-property presence. */
export interface RawMetric {
  name?: string;
  alias?: UInt64;
  timestamp?: UInt64;
  datatype?: number;
  isHistorical?: boolean;
  isNull?: boolean;
  intValue?: number;
  longValue?: UInt64;
  floatValue?: number;
  doubleValue?: number;
  /** Name of the value field that is set (the protobuf oneof), if any. */
  readonly value?: string;
}

export interface RawPayload {
  timestamp?: UInt64;
  metrics?: RawMetric[];
  seq?: UInt64;
}

const Payload = proto.org.eclipse.tahu.protobuf.Payload;

/** Decodes the protobuf; throws protobufjs's own error ("index out of range: ...") on a broken one. */
export function decodeSparkplugProtobuf(bytes: Uint8Array): RawPayload {
  return Payload.decode(bytes) as unknown as RawPayload;
}

/** Own-property presence: absent optional fields show their defaults through the prototype. */
export function has(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

export function uint64ToNumber(v: UInt64): number {
  return typeof v === 'number' ? v : (v.high >>> 0) * 4294967296 + (v.low >>> 0);
}

/** uint64 on the wire, two's complement int64 in meaning (Sparkplug Int64). */
function int64ToNumber(v: UInt64): number {
  return typeof v === 'number' ? v : (v.high | 0) * 4294967296 + (v.low >>> 0);
}

export function uint64Key(v: UInt64): string {
  return typeof v === 'number' ? String(v) : v.toString();
}

export const DataType = { Int8: 1, Int16: 2, Int32: 3, Int64: 4, UInt8: 5, UInt16: 6, UInt32: 7, UInt64: 8, Float: 9, Double: 10 } as const;

const TYPE_NAMES = [
  'Unknown', 'Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double', 'Boolean', 'String', 'DateTime', 'Text', 'UUID',
  'DataSet', 'Bytes', 'File', 'Template', 'PropertySet', 'PropertySetList',
];

export function dataTypeName(t: number | undefined): string {
  return t === undefined ? 'no datatype' : (TYPE_NAMES[t] ?? `datatype ${t}`);
}

/** The scalar numeric datatypes: the only ones that become samples. */
export function isNumericType(t: number | undefined): t is number {
  return t !== undefined && t >= DataType.Int8 && t <= DataType.Double;
}

/**
 * The metric's value as a number under its datatype, undefined when it carries none, or the
 * name of the value field when that field holds no number (a string in a Float metric).
 * Integers are cut to their datatype's width and sign-extended, so an Int8 -1 reads back whether
 * the publisher wrote it as 0xFF or as 0xFFFFFFFF.
 */
export function numericValue(m: RawMetric, datatype: number): number | undefined | { wrongField: string } {
  const signed = datatype >= DataType.Int8 && datatype <= DataType.Int64;
  switch (m.value) {
    case undefined:
      return undefined;
    case 'floatValue':
      return m.floatValue as number;
    case 'doubleValue':
      return m.doubleValue as number;
    case 'intValue': {
      const raw = m.intValue as number;
      return fromLow32(raw >>> 0, datatype) ?? (signed ? raw | 0 : raw >>> 0);
    }
    case 'longValue': {
      const v = m.longValue as UInt64;
      return fromLow32(typeof v === 'number' ? v >>> 0 : v.low >>> 0, datatype) ?? (signed ? int64ToNumber(v) : uint64ToNumber(v));
    }
    default:
      return { wrongField: m.value };
  }
}

/** The value of a datatype narrower than 32 bits (or exactly 32, signed) from the low 32 bits. */
function fromLow32(low32: number, datatype: number): number | undefined {
  switch (datatype) {
    case DataType.Int8:
      return (low32 << 24) >> 24;
    case DataType.Int16:
      return (low32 << 16) >> 16;
    case DataType.Int32:
      return low32 | 0;
    case DataType.UInt8:
      return low32 & 0xff;
    case DataType.UInt16:
      return low32 & 0xffff;
    default:
      return undefined;
  }
}
