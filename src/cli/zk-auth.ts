// ZooKeeper refusing --zk-auth is a start-up error like a bad flag: the session layer stops in
// state 'auth_failed' (every new session would be refused the same way), and a command that
// has not had a session yet exits 2 with one line naming the flag. A refusal on a later
// session (after an expiry) is logged and the process keeps what it has (static stability).
import type { ZkSession, SessionState } from '../zk/index.js'
import type { CliContext } from './lifecycle.js'

export function exitOnAuthFailure (session: ZkSession, ctx: CliContext, schemes: readonly string[]): void {
  let connected = false
  const onState = (s: SessionState): void => {
    if (s === 'connected') connected = true
    if (s !== 'auth_failed') return
    if (connected) {
      ctx.logger.error({ schemes }, 'ZooKeeper refused --zk-auth on a new session; running on without ZooKeeper')
      return
    }
    ctx.failStartup(`--zk-auth: ZooKeeper refused the credentials (scheme ${schemes.join(', ')})`, 'ZKPROXY_ERR_ZK_AUTH_FAILED')
  }
  session.on('state', onState)
}
