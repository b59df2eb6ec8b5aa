// Credentials at start-up, with the built CLI (`npm run build` first): a wrong digest password
// or credentials ZooKeeper refuses end the command with exit code 2 and one line naming
// --zk-auth, instead of a process that runs without the rights it needs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestId, ZkSession, type SessionState } from '../../src/zk/index.js'
import { runCli, startCli } from '../support/cli.js'
import { stopAllTracked } from '../support/processes.js'
import { ms } from '../support/until.js'
import { chrootConnect, closeAllSessions, silentLogger, trackSession } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'

const aclFlags = ['--zk-acl-replicas', `digest:${digestId('replica:right')}`, '--zk-acl-proxies', `digest:${digestId('proxy:right')}`]

let zk: ZkCluster
let zkConnect: string
let dir: string

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  zkConnect = await chrootConnect(zk.connectString, 'sec-auth')
  dir = await mkdtemp(join(tmpdir(), 'zkproxy-auth-'))
})

afterAll(async () => {
  await stopAllTracked()
  await closeAllSessions()
  await zk?.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** The one line a failed start prints (JSON log lines, if any came first, are skipped). */
function errorLines (lines: string[]): string[] {
  return lines.filter(l => !l.startsWith('{'))
}

describe('credentials at start-up', () => {
  it('a session whose credentials ZooKeeper refuses stops in auth_failed instead of reconnecting in a loop', async () => {
    const states: SessionState[] = []
    const session = trackSession(new ZkSession({ connect: zkConnect, sessionTimeoutMs: 4000, logger: silentLogger, auth: [{ scheme: 'nosuchscheme', credential: 'x' }] }))
    session.on('state', (s: SessionState) => { states.push(s) })
    session.start()
    await expect(session.waitConnected(ms(10_000))).rejects.toMatchObject({ code: 'ZKPROXY_ERR_ZK_AUTH_FAILED' })
    expect(session.state).toBe('auth_failed')
    expect(states).not.toContain('expired')
  })

  it.each([
    ['replica', ['--port', '0']],
    ['register', ['--url', 'http://127.0.0.1:1']],
    ['proxy', ['--listen', '127.0.0.1:0', '--admin', 'off']]
  ])('a wrong digest password makes `zkproxy %s` exit 2 with one line naming --zk-auth', async (cmd, extra) => {
    const user = cmd === 'proxy' ? 'proxy' : 'replica'
    const r = await runCli([cmd, '--zk', zkConnect, ...extra, '--zk-auth', `digest:${user}:wrong`, ...aclFlags])
    expect(r.code).toBe(2)
    expect(r.lines).toHaveLength(1)
    expect(r.lines[0]).toMatch(new RegExp(`^zkproxy ${cmd}: --zk-auth: wrong password for digest user "${user}"`))
  })

  it('the password may come from --zk-auth-file (kept out of ps), with the same check', async () => {
    const file = join(dir, 'auth')
    await writeFile(file, 'digest:replica:wrong\n', { mode: 0o600 })
    const r = await runCli(['replica', '--zk', zkConnect, '--port', '0', '--zk-auth-file', file, ...aclFlags])
    expect(r.code).toBe(2)
    expect(r.lines).toEqual([expect.stringMatching(/^zkproxy replica: --zk-auth: wrong password/)])
  })

  it('ACL mode without the role\'s credential is refused at start', async () => {
    const r = await runCli(['proxy', '--zk', zkConnect, '--listen', '127.0.0.1:0', '--admin', 'off', ...aclFlags])
    expect(r.code).toBe(2)
    expect(r.lines).toEqual([expect.stringMatching(/^zkproxy proxy: --zk-auth: no digest credential for user "proxy"/)])
  })

  it.each([
    ['proxy', ['--listen', '127.0.0.1:0', '--admin', 'off']],
    ['replica', ['--port', '0']],
    ['status', []]
  ])('credentials ZooKeeper refuses make `zkproxy %s` exit 2 naming --zk-auth', async (cmd, extra) => {
    const r = await runCli([cmd, '--zk', zkConnect, ...extra, '--zk-auth', 'nosuchscheme:whatever'], { timeoutMs: ms(20_000) })
    expect(r.code).toBe(2)
    expect(errorLines(r.lines)).toEqual([expect.stringMatching(new RegExp(`^zkproxy ${cmd}: --zk-auth: ZooKeeper refused the credentials`))])
  })

  it('the right password starts (the check compares digests, it does not reject ACL mode)', async () => {
    const { proc } = await startCli(['proxy', '--zk', zkConnect, '--listen', '127.0.0.1:0', '--admin', 'off', '--zk-auth', 'digest:proxy:right', ...aclFlags], 'proxy listening')
    proc.kill()
    await proc.exited
  })
})
