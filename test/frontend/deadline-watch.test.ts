// The dispatchers' hang deadlines (frontend/placement/deadline.ts): one timer for all the calls of
// a watch. A call that answers in time gives its outcome; one that does not gets the watch's error
// at its deadline, and its late outcome is swallowed; calls with earlier deadlines than the one the
// timer is armed for still expire first.
import t from 'tap'
import { DeadlineWatch, withDeadline } from '../../frontend/placement/deadline.js'
import { MetaosError } from '../../soap-runtime/errors.js'

const never = (): Promise<never> => new Promise<never>(() => {})
const later = <T>(ms: number, v: T): Promise<T> => new Promise((resolve) => { setTimeout(() => { resolve(v) }, ms) })
const hang = (name: string) => () => new MetaosError('TIMED_OUT', `${name} hung`)

t.test('calls in time give their outcome; the watch is empty after them', async (t) => {
  const w = new DeadlineWatch()
  t.equal(await w.watch(Promise.resolve(7), 5000, hang('a')), 7)
  await t.rejects(w.watch(Promise.reject(new MetaosError('FILE_NOT_FOUND', 'no')), 5000, hang('b')), { code: 'FILE_NOT_FOUND' })
  for (let i = 0; i < 100; i++) t.equal(await w.watch(later(0, i), 5000, hang('c')), i)
  t.equal(w.size, 0)
})

t.test('a call past its deadline gets the watch error; its late outcome is swallowed', async (t) => {
  // The watch's timer does not keep a process alive (the call's transport does): this one does here.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive) })
  const w = new DeadlineWatch()
  const slow = new Promise<string>((_resolve, reject) => { setTimeout(() => { reject(new Error('late failure')) }, 300) })
  await t.rejects(w.watch(slow, 50, hang('slow')), { code: 'TIMED_OUT', message: 'slow hung' })
  await new Promise((resolve) => setTimeout(resolve, 350)) // the late rejection lands: nothing unhandled
  t.equal(w.size, 0)
})

t.test('an earlier deadline than the armed one expires first; the others go on', async (t) => {
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive) })
  const w = new DeadlineWatch()
  const order: string[] = []
  const long = w.watch(never(), 2000, hang('long')).catch((e: MetaosError) => { order.push(e.message) })
  const short = w.watch(never(), 50, hang('short')).catch((e: MetaosError) => { order.push(e.message) })
  const fine = w.watch(later(100, 'answered'), 1000, hang('fine'))
  await short
  t.same(order, ['short hung'])
  t.equal(await fine, 'answered')
  await long
  t.same(order, ['short hung', 'long hung'])
  t.equal(w.size, 0)
})

t.test('withDeadline: one call, its own watch', async (t) => {
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive) })
  t.equal(await withDeadline(Promise.resolve('x'), 100, hang('x')), 'x')
  await t.rejects(withDeadline(never(), 20, hang('y')), { code: 'TIMED_OUT' })
})
