import t from 'tap'
import { startTestDomain } from './helpers/domain.js'
t.test('domain answers', async (t) => {
  const d = await startTestDomain(t)
  const res = await fetch(d.http + '?wsdl')
  t.equal(res.status, 200)
})
