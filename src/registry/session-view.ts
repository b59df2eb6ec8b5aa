// What layers above the registry (the admin listener) may know of the ZooKeeper session: its
// state and identity, and its state events. They read it through this module, never from
// src/zk/ directly, so the zookeeper-facing layer stays behind the registry.
import type { ZkSession } from '../zk/index.js'

export type { ConnectedEvent, SessionState } from '../zk/index.js'

/** The read-only face of a ZkSession: `state`, `sessionId`, `connectString`, since when it is unreachable, and its events. */
export type SessionView = Pick<ZkSession, 'state' | 'sessionId' | 'connectString' | 'unreachableSince' | 'on' | 'off'>
