// Small time helpers for the CLI's start-up and shutdown steps.

/** Resolves after `ms`; does not keep the process alive on its own. */
export async function delay (ms: number): Promise<void> {
  await new Promise<void>(resolve => setTimeout(resolve, ms).unref())
}

/** Waits for `p`, but at most `ms` (a shutdown step must not hang the exit). */
export async function bounded (p: Promise<void> | undefined, ms: number): Promise<void> {
  if (p === undefined) return
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** `p`, or a rejection with `message` once `ms` have passed (a command must not hang on ZooKeeper). */
export async function withDeadline<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message)) }, ms) })
  try {
    return await Promise.race([p, expired])
  } finally {
    clearTimeout(timer)
  }
}
