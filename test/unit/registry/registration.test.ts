// The pure parts of Registration: which count a (re)created target znode starts at.
import { describe, expect, it } from 'vitest'
import { countOf, minimumCount, startingCount } from '../../../src/registry/registration.js'

const target = (requests: number): Buffer => Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4000', requests }))

describe('minimumCount', () => {
  it('is the lowest count among the other live targets', () => {
    expect(minimumCount([{ name: 'a', data: target(300) }, { name: 'b', data: target(100_000) }, { name: 'c', data: target(250) }], 'me')).toBe(250)
  })

  it('is 0 when there is no other target', () => {
    expect(minimumCount([], 'me')).toBe(0)
    expect(minimumCount([{ name: 'me', data: target(9) }], 'me')).toBe(0)
  })

  it('leaves out our own node (an old session\'s node must not set our floor)', () => {
    expect(minimumCount([{ name: 'me', data: target(1) }, { name: 'b', data: target(50) }], 'me')).toBe(50)
  })

  it('ignores undecodable and vanished targets, and reads the bare-integer form', () => {
    const targets = [
      { name: 'junk', data: Buffer.from('not json') },
      { name: 'gone', data: null },
      { name: 'neg', data: Buffer.from(JSON.stringify({ url: 'http://x:1', requests: -5 })) },
      { name: '10.0.0.7:4000', data: Buffer.from('70') },
      { name: 'b', data: target(80) }
    ]
    expect(minimumCount(targets, 'me')).toBe(70)
    expect(minimumCount(targets.slice(0, 3), 'me')).toBe(0)
  })
})

describe('minimumCount with routes: the floor of the pools the new target joins', () => {
  const routed = (requests: number, ...routes: string[]): Buffer => Buffer.from(JSON.stringify({ url: 'http://127.0.0.1:4000', requests, routes }))
  const fleet = [
    { name: 'site', data: target(1_000_000) },
    { name: 'shop-1', data: routed(500, 'shop.example.com') },
    { name: 'shop-2', data: routed(300, 'Shop.Example.com/') },
    { name: 'blog-1', data: routed(40, 'blog.example.com') }
  ]

  it('counts only targets sharing a pool, whatever spelling they used for the route', () => {
    expect(minimumCount(fleet, 'me', ['shop.example.com'])).toBe(300)
    expect(minimumCount(fleet, 'me', ['blog.example.com'])).toBe(40)
  })

  it('a default-pool target is measured against the default pool only', () => {
    expect(minimumCount(fleet, 'me')).toBe(1_000_000)
    expect(minimumCount(fleet, 'me', [])).toBe(1_000_000)
  })

  it('a target joining several pools takes the highest of their minimums (never flooded in any)', () => {
    expect(minimumCount(fleet, 'me', ['shop.example.com', 'blog.example.com'])).toBe(300)
  })

  it('is 0 for a route nobody else serves yet', () => {
    expect(minimumCount(fleet, 'me', ['new.example.com'])).toBe(0)
  })
})

describe('startingCount', () => {
  it('a first creation starts at the floor', () => {
    expect(startingCount(undefined, 100_000)).toBe(100_000)
    expect(startingCount(undefined, 0)).toBe(0)
  })

  it('a re-creation continues its own count exactly, even when the others moved past it', () => {
    expect(startingCount(42, 10)).toBe(42)
    expect(startingCount(42, 500)).toBe(42)
    expect(startingCount(0, 500)).toBe(0)
  })
})

describe('countOf', () => {
  it('reads the count, or undefined for data that is not a target', () => {
    expect(countOf('a', target(7))).toBe(7)
    expect(countOf('a', Buffer.from('{}'))).toBeUndefined()
    expect(countOf('a', null)).toBeUndefined()
  })
})
