// Processes under test from /proc: finding a peer's binary, reading CPU time, and stopping a
// tree whose children would outlive a SIGKILLed parent (as nginx's workers do).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cpuSeconds, descendants, findBinary, stopTree } from '../../../bench/proc.js'
import { spawnTracked, stopAllTracked } from '../../../test/support/processes.js'
import { ms, until } from '../../../test/support/until.js'

/** Running: not gone and not a zombie (an adopted orphan may wait a while to be reaped). */
const running = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch { return false }
}

describe('findBinary', () => {
  const dirs: string[] = []
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

  it('finds an executable file in PATH and ignores one that is not executable', () => {
    const a = mkdtempSync(join(tmpdir(), 'bench-bin-a-'))
    const b = mkdtempSync(join(tmpdir(), 'bench-bin-b-'))
    dirs.push(a, b)
    writeFileSync(join(a, 'peerd'), '#!/bin/sh\n')
    writeFileSync(join(b, 'peerd'), '#!/bin/sh\n')
    chmodSync(join(b, 'peerd'), 0o755)
    expect(findBinary('peerd', `${a}:${b}`)).toBe(join(b, 'peerd'))
    expect(findBinary('no-such-peerd', `${a}:${b}`)).toBeUndefined()
  })
})

describe('process trees', () => {
  afterEach(async () => { await stopAllTracked() })

  it('reads CPU time, 0 for no process', () => {
    expect(cpuSeconds(process.pid)).toBeGreaterThan(0)
    expect(cpuSeconds(undefined)).toBe(0)
  })

  it('stops the children a parent leaves behind when it is SIGKILLed', async () => {
    // sh ignores SIGTERM here (trap), so stopTree escalates to SIGKILL after the grace period,
    // which orphans its `sleep` child: that child must be stopped by its own PID. It also holds
    // the pipes it inherited, so waiting for them to close would wait for ever.
    const sh = spawnTracked('sh', ['-c', 'trap "" TERM; sleep 30 & echo started; wait'], { name: 'tree' })
    await sh.waitForOutput(/started/, ms(5000))
    const tree = descendants(sh.pid)
    expect(tree).toHaveLength(1)
    const child = tree[0]!.pid
    await stopTree(sh, 'SIGTERM', 200)
    expect(sh.exitInfo?.signal).toBe('SIGKILL')
    // SIGKILL is delivered at once, but the kernel may take a moment to finish the process.
    await until(() => !running(child), { timeoutMs: ms(5000), message: `sleep ${child} stopped` })
  })
})
