import { describe, expect, it } from 'vitest'
import { ClientLimit } from '../../../src/proxy/client-limit.js'

describe('ClientLimit', () => {
  it('admits up to the cap per address, and again once one left', () => {
    const limit = new ClientLimit(2)
    expect([limit.enter('a'), limit.enter('a'), limit.enter('a'), limit.enter('b')]).toEqual([true, true, false, true])
    limit.leave('a')
    expect(limit.enter('a')).toBe(true)
    expect(limit.active('a')).toBe(2)
    for (const c of ['a', 'a', 'b']) limit.leave(c)
    expect(limit.active()).toBe(0)
  })

  it('0 is no cap and counts nothing', () => {
    const limit = new ClientLimit(0)
    for (let i = 0; i < 1000; i++) expect(limit.enter('a')).toBe(true)
    expect(limit.active()).toBe(0)
  })
})
