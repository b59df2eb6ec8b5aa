// The set-up most integration files share: one standalone ZooKeeper for the file, and after
// each test every proxy, backend and session it started is stopped (also when it failed).
import { afterAll, afterEach, beforeAll } from 'vitest'
import { startZooKeeper, type ZkCluster } from './zookeeper.js'
import { stopAllProxies } from './proxy.js'
import { closeAllBackends } from './backends.js'
import { closeAllSessions } from './zk-client.js'

/** Registers the hooks; the returned function gives the file's ZooKeeper inside tests. */
export function useZooKeeper (): () => ZkCluster {
  let zk: ZkCluster | undefined
  beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
  afterAll(async () => { await zk?.stop() })
  afterEach(async () => {
    await stopAllProxies()
    await closeAllBackends()
    await closeAllSessions()
  })
  return () => {
    if (zk === undefined) throw new Error('ZooKeeper not started (useZooKeeper() must be called at file level)')
    return zk
  }
}
