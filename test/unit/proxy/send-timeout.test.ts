// The send timeout (src/proxy/send-timeout.ts) on a fake clock: a cut only after the timeout
// without write progress, never while writes progress, never once nothing is outstanding.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { SendTimeout } from '../../../src/proxy/send-timeout.js'

beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
afterEach(() => { vi.useRealTimers() })

describe('SendTimeout', () => {
  it('cuts a client that takes nothing for the timeout', () => {
    const cut = vi.fn()
    const t = new SendTimeout(1000, cut)
    t.writing()
    vi.advanceTimersByTime(999)
    expect(cut).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(cut).toHaveBeenCalledTimes(1)
  })

  it('counts the time without progress from the last write that completed', () => {
    const cut = vi.fn()
    const t = new SendTimeout(1000, cut)
    t.writing()
    t.writing()
    vi.advanceTimersByTime(800)
    t.written() // one chunk went out: progress
    vi.advanceTimersByTime(800)
    expect(cut).not.toHaveBeenCalled()
    vi.advanceTimersByTime(200)
    expect(cut).toHaveBeenCalledTimes(1)
  })

  it('never cuts once every write completed, nor after stop()', () => {
    const cut = vi.fn()
    const idle = new SendTimeout(1000, cut)
    idle.writing()
    idle.written()
    vi.advanceTimersByTime(5000)
    const stopped = new SendTimeout(1000, cut)
    stopped.writing()
    stopped.stop()
    vi.advanceTimersByTime(5000)
    expect(cut).not.toHaveBeenCalled()
  })
})
