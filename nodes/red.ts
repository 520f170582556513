// The parts of Node-RED's runtime API the nodes use (Node-RED ships no types of its own).
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The slice of an Express request and response the admin endpoints use. */
export interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
  send(body: string): void;
}
type NextFunction = (err?: unknown) => void;

export interface NodeMessage {
  _msgid?: string;
  topic?: string;
  payload?: unknown;
  [key: string]: unknown;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFunction = (msg: NodeMessage | Array<NodeMessage | null>) => void;
export type DoneFunction = (err?: Error) => void;

export interface Node {
  id: string;
  type: string;
  name?: string;
  on(event: 'input', listener: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  status(status: NodeStatus): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(message: unknown): void;
  log(message: unknown): void;
  send(msg: NodeMessage): void;
}

type Handler = (req: AdminRequest, res: AdminResponse, next?: NextFunction) => void;

export interface RED {
  nodes: {
    createNode(node: object, config: object): void;
    registerType(type: string, constructor: (this: Node, config: never) => void, options?: object): void;
    getNode(id: string): unknown;
  };
  settings: Record<string, unknown> & { userDir?: string };
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
  /** The express app of httpNodeRoot, behind httpNodeAuth (Node-RED 4 and 5). */
  httpNode: { use(path: string, handler: (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void): void };
  httpAdmin: { get(path: string, ...handlers: Handler[]): void; post(path: string, ...handlers: Handler[]): void };
  auth: { needsPermission(permission: string): Handler };
  comms: { publish(topic: string, data: unknown, retain?: boolean): void };
  util: { getMessageProperty(msg: NodeMessage, property: string): unknown; cloneMessage<T extends NodeMessage>(msg: T): T };
  _: (key: string, substitutions?: Record<string, unknown>) => string;
}
