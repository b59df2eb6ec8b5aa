// The access log's buffer (src/cli/logger.ts): whole lines in few writes, and a reader that is
// gone or slow costs lines, never a hang or a crash.
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BufferedLines } from '../../src/cli/logger.js'

describe('BufferedLines', () => {
  it('keeps lines until 4 KiB or a flush, then writes them whole and in order', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zkproxy-log-')), 'access.log')
    const fd = openSync(file, 'w')
    const lines = new BufferedLines(fd)
    lines.write('{"a":1}\n')
    lines.write('{"a":2}\n')
    expect(readFileSync(file, 'utf8')).toBe('')
    lines.flush()
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"a":2}\n')
    for (let i = 0; i < 100; i++) lines.write(`${JSON.stringify({ i, pad: 'x'.repeat(50) })}\n`)
    // Past 4 KiB without a flush: written by the buffer itself.
    expect(readFileSync(file, 'utf8').split('\n').length).toBeGreaterThan(60)
    lines.flush()
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(102)
    closeSync(fd)
  })

  it('a descriptor that fails (a reader gone: EPIPE, EBADF) turns the log off: no throw, no loop, lines counted as dropped', () => {
    const fd = openSync(join(mkdtempSync(join(tmpdir(), 'zkproxy-log-')), 'x'), 'w')
    closeSync(fd)
    const lines = new BufferedLines(fd)
    lines.write('{"a":1}\n')
    expect(() => { lines.flush() }).not.toThrow()
    lines.write('{"a":2}\n')
    lines.flush()
    expect(lines.dropped).toBe(2)
  })
})
