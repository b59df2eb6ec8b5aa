// The session layer's public surface: everything above src/zk/ imports from here.
export { ZkSession, expireSession, type SessionState, type SessionOptions, type ConnectedEvent } from './session.js'
export { watchData, watchChildren, type DataValue, type Watch } from './watch.js'
export { EphemeralNode, type EphemeralState, type EphemeralOptions } from './ephemeral.js'
export { updateWithRetry, type CasResult } from './cas.js'
export { CreateMode, Perm, type Stat, type AclEntry } from './native.js'
export { aclEquals, digestId, digestUser, entry, formatAcl, formatAclId, normalizeAcl, parseAclId, worldMay, type AclId } from './acl.js'
export { isRetryable, ZkError, NoNodeError, NodeExistsError, BadVersionError, ConnectionLossError, SessionExpiredError, NoAuthError, AuthFailedError, ClosedError } from './errors.js'
export { SerialTask } from './serial-task.js'
