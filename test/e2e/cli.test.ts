// The `zkproxy` command itself: what a bare call, `help` and `--help` print and exit with, and
// that every address flag (and its environment twin) refuses a port out of range in one line
// naming it, exit 2, before anything starts. No ZooKeeper needed: nothing gets that far.
import { afterAll, describe, expect, it } from 'vitest'
import { cliPath } from '../support/cli.js'
import { spawnTracked, stopAllTracked } from '../support/processes.js'
import { ms } from '../support/until.js'

afterAll(async () => { await stopAllTracked() })

interface Run { code: number | null, stdout: string, stderr: string }

/** `zkproxy <args>` to its exit, stdout and stderr apart; SIGKILLed past the deadline. */
async function zkproxy (args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ZK_CONNECT' && !k.startsWith('ZKPROXY_')))
  const proc = spawnTracked(process.execPath, [cliPath(), ...args], { env: { ...clean, ...env }, name: `zkproxy ${args.join(' ')}` })
  let stdout = ''
  let stderr = ''
  proc.child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  proc.child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => { proc.kill() }, ms(15_000))
  try {
    const { code } = await proc.exited
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

const COMMANDS = ['proxy', 'replica', 'register', 'dev', 'status']

function expectCommandList (text: string): void {
  for (const name of COMMANDS) {
    const line = text.split('\n').find(l => l.startsWith(`  ${name} `))
    expect(line, `a line for ${name} in:\n${text}`).toMatch(new RegExp(`^ {2}${name} +\\S.*$`))
  }
  expect(text).toContain('Exit codes:')
}

describe('zkproxy (no command, help)', () => {
  it('bare: the command list on stderr, nothing on stdout, exit 2', async () => {
    const r = await zkproxy([])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expectCommandList(r.stderr)
  })

  it('`help` and `--help`: the command list on stdout, exit 0', async () => {
    for (const args of [['help'], ['--help']]) {
      const r = await zkproxy(args)
      expect(r.code, args.join(' ')).toBe(0)
      expectCommandList(r.stdout)
    }
  })

  it('`help <command>` and `<command> --help`: its flags with their environment twins and the exit codes, exit 0', async () => {
    for (const args of [['help', 'proxy'], ['proxy', '--help']]) {
      const r = await zkproxy(args)
      expect(r.code).toBe(0)
      const text = r.stdout.replace(/\s+/g, ' ')
      expect(text).toContain('--zk <connect>')
      expect(text).toContain('env: ZK_CONNECT')
      expect(text).toContain('--drain-ms <ms>')
      expect(text).toContain('Exit codes: 0')
    }
    const status = await zkproxy(['status', '--help'])
    expect(status.stdout.replace(/\s+/g, ' ')).toContain('1 no usable target is registered')
  })

  it('an unknown command, also after `help`: one line saying how to list them, exit 2', async () => {
    for (const args of [['frobnicate'], ['help', 'frobnicate']]) {
      const r = await zkproxy(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr.trim().split('\n')).toEqual(["zkproxy: unknown command 'frobnicate' (`zkproxy help` lists the commands)"])
    }
  })
})

describe('address flags', () => {
  // Each one is refused before anything listens or connects, so no ZooKeeper is needed.
  const cases: Array<[args: string[], flag: string]> = [
    [['proxy', '--zk', '127.0.0.1:99999'], '--zk'],
    [['proxy', '--zk', '127.0.0.1:2181,127.0.0.2:0/app'], '--zk'],
    [['proxy', '--listen', '127.0.0.1:99999'], '--listen'],
    [['proxy', '--admin', '127.0.0.1:65536'], '--admin'],
    [['replica', '--port', '99999'], '--port'],
    [['replica', '--port', '0', '--zk', '127.0.0.1:99999'], '--zk'],
    [['register', '--url', 'http://127.0.0.1:4000', '--zk', '127.0.0.1:99999'], '--zk'],
    [['register', '--url', 'http://127.0.0.1:99999'], '--url'],
    [['status', '--zk', '127.0.0.1:99999'], '--zk'],
    [['dev', '--zk', '127.0.0.1:99999'], '--zk'],
    [['dev', '--listen', '127.0.0.1:99999'], '--listen'],
    [['dev', '--admin', '127.0.0.1:99999'], '--admin']
  ]
  for (const [args, flag] of cases) {
    it(`${args.join(' ')}: exit 2, one line naming ${flag}`, async () => {
      const r = await zkproxy(args)
      expect(r.code, r.stderr).toBe(2)
      const lines = r.stderr.trim().split('\n')
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(new RegExp(`^zkproxy ${args[0]!}: .*${flag}`))
      expect(r.stdout).toBe('')
    })
  }

  it('the same from the environment twin: ZK_CONNECT with a bad port, named', async () => {
    const r = await zkproxy(['status'], { ZK_CONNECT: '127.0.0.1:99999' })
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain('ZK_CONNECT')
    expect(r.stderr).toContain('port must be 1-65535, got 99999')
  })
})
