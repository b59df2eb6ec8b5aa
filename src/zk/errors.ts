// ZooKeeper result codes, translated once into typed errors. The native client hands us the
// integer rc (it would also put it in a message like "-110 node exists"); everything above
// src/zk/ matches on `err.code` from the catalogue, never on numbers or message text.
import { ZkproxyError, type ErrorCode } from '../errors.js'

// Result codes from the C client's zookeeper.h (ZOO_ERRORS).
export const rc = {
  OK: 0,
  SYSTEMERROR: -1,
  RUNTIMEINCONSISTENCY: -2,
  DATAINCONSISTENCY: -3,
  CONNECTIONLOSS: -4,
  MARSHALLINGERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  INVALIDSTATE: -9,
  APIERROR: -100,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDCALLBACK: -113,
  INVALIDACL: -114,
  AUTHFAILED: -115,
  CLOSING: -116,
  NOTHING: -117,
  SESSIONMOVED: -118
} as const

export class ZkError extends ZkproxyError {
  readonly rc: number
  readonly path: string | undefined

  constructor (code: ErrorCode, resultCode: number, op: string, path?: string) {
    super(code, `${op}${path === undefined ? '' : ` ${path}`} (rc ${resultCode})`)
    this.name = 'ZkError'
    this.rc = resultCode
    this.path = path
  }
}

// The named classes the foundation issue asks for; `code` stays the contract.
export class NoNodeError extends ZkError {}
export class NodeExistsError extends ZkError {}
export class BadVersionError extends ZkError {}
export class NotEmptyError extends ZkError {}
export class NoAuthError extends ZkError {}
export class AuthFailedError extends ZkError {}
export class ConnectionLossError extends ZkError {}
export class SessionExpiredError extends ZkError {}
export class ClosedError extends ZkError {}

type ErrorClass = new (code: ErrorCode, resultCode: number, op: string, path?: string) => ZkError

// One table, read once per failed call: rc → (catalogue code, class).
const table = new Map<number, [ErrorCode, ErrorClass]>([
  [rc.NONODE, ['ZKPROXY_ERR_ZK_NO_NODE', NoNodeError]],
  [rc.NODEEXISTS, ['ZKPROXY_ERR_ZK_NODE_EXISTS', NodeExistsError]],
  [rc.BADVERSION, ['ZKPROXY_ERR_ZK_BAD_VERSION', BadVersionError]],
  [rc.NOTEMPTY, ['ZKPROXY_ERR_ZK_NOT_EMPTY', NotEmptyError]],
  [rc.NOAUTH, ['ZKPROXY_ERR_ZK_NO_AUTH', NoAuthError]],
  [rc.INVALIDACL, ['ZKPROXY_ERR_ZK_NO_AUTH', NoAuthError]],
  [rc.AUTHFAILED, ['ZKPROXY_ERR_ZK_AUTH_FAILED', AuthFailedError]],
  // Connection loss and its relatives all mean "outcome unknown, try again on a live session".
  [rc.CONNECTIONLOSS, ['ZKPROXY_ERR_ZK_CONNECTION_LOSS', ConnectionLossError]],
  [rc.OPERATIONTIMEOUT, ['ZKPROXY_ERR_ZK_CONNECTION_LOSS', ConnectionLossError]],
  [rc.SESSIONMOVED, ['ZKPROXY_ERR_ZK_CONNECTION_LOSS', ConnectionLossError]],
  [rc.SESSIONEXPIRED, ['ZKPROXY_ERR_ZK_SESSION_EXPIRED', SessionExpiredError]],
  [rc.INVALIDSTATE, ['ZKPROXY_ERR_ZK_CLOSED', ClosedError]],
  [rc.CLOSING, ['ZKPROXY_ERR_ZK_CLOSED', ClosedError]],
  [rc.BADARGUMENTS, ['ZKPROXY_ERR_ZK_BAD_ARGUMENTS', ZkError]],
  [rc.NOCHILDRENFOREPHEMERALS, ['ZKPROXY_ERR_ZK_BAD_ARGUMENTS', ZkError]]
])

export function zkError (resultCode: number, op: string, path?: string): ZkError {
  const [code, Cls] = table.get(resultCode) ?? ['ZKPROXY_ERR_ZK_UNKNOWN', ZkError]
  return new Cls(code, resultCode, op, path)
}

/** Errors after which the same operation may succeed on a (re)connected session. */
export function isRetryable (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ZKPROXY_ERR_ZK_CONNECTION_LOSS' ||
    code === 'ZKPROXY_ERR_ZK_SESSION_EXPIRED' ||
    code === 'ZKPROXY_ERR_ZK_CLOSED'
}
