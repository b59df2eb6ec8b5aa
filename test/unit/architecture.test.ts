// No import circles in src/ (type-only imports included: a circle of types is still two
// modules that cannot be understood one without the other). The layer rules themselves are
// lint rules (eslint.config.js); eslint's core and typescript-eslint rules cannot see circles.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)))
const srcDir = join(root, 'src')

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(p)
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : []
  })
}

/** src/ as a graph: file → the src/ files it imports (relative specifiers, `.js` → `.ts`). */
function importGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(srcDir)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const targets = info.importedFiles
      .map(f => f.fileName)
      .filter(s => s.startsWith('.'))
      .map(s => resolve(dirname(file), s.replace(/\.js$/, '.ts')))
    graph.set(relative(root, file), targets.map(t => relative(root, t)))
  }
  return graph
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function circles (graph: Map<string, string[]>): string[][] {
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    indices.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!))
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!indices.has(v)) visit(v)
  return found
}

describe('architecture', () => {
  it('finds a circle when there is one (the check itself)', () => {
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']], ['e', ['e']]])
    expect(circles(g)).toEqual([['a', 'b', 'c'], ['e']])
  })

  it('src/ has no import circles', () => {
    const graph = importGraph()
    expect(graph.size).toBeGreaterThan(50)
    // Every relative import resolves to a file of src/ (a wrong extension would hide an edge).
    const known = new Set(graph.keys())
    const dangling = [...graph.entries()].flatMap(([f, ts]) => ts.filter(t => !known.has(t)).map(t => `${f} → ${t}`))
    expect(dangling).toEqual([])
    expect(circles(graph)).toEqual([])
  })
})
