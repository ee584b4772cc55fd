// The dashboard's domain actions (metaos up only): shown when the page was opened with the control
// token `metaos up` printed (http://127.0.0.1:PORT/#token=…). The token is taken from the fragment
// (never sent in a URL, never logged), kept for this tab only (sessionStorage), and sent as
// `Authorization: Bearer` to the control endpoint (/api/domains/NAME/ACTION); without it the panel
// stays hidden and the server would refuse (401) anyway.

const $ = (id) => document.getElementById(id)
const KEY = 'metaos-control-token'

function token () {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]{1,200})/.exec(location.hash)
  if (m !== null) {
    sessionStorage.setItem(KEY, m[1])
    history.replaceState(null, '', location.pathname + location.search)
  }
  return sessionStorage.getItem(KEY)
}

/** Keeps the domain choice in step with the status (the selection survives a redraw). */
export function updateActions (st) {
  const select = $('action-domain')
  if (select === null || $('actions-panel').hidden) return
  const names = st.domains.map((d) => d.name)
  if ([...select.options].map((o) => o.value).join('\n') === names.join('\n')) return
  const chosen = select.value
  select.replaceChildren(...names.map((n) => { const o = document.createElement('option'); o.value = n; o.textContent = n; return o }))
  if (names.includes(chosen)) select.value = chosen
}

async function act (t, action) {
  const name = $('action-domain').value
  const out = $('action-result')
  if (name === '') return
  const body = { by: 'dashboard' }
  if ((action === 'clone' || action === 'migrate') && $('action-new-name').value.trim() !== '') body.newName = $('action-new-name').value.trim()
  if (action === 'resize') {
    const cpus = Number($('action-cpus').value)
    const mib = Number($('action-memory').value)
    if ($('action-cpus').value !== '' && cpus > 0) body.cpuPercent = Math.round(cpus * 100)
    if ($('action-memory').value !== '' && mib > 0) body.memoryBytes = Math.round(mib * 1048576)
  }
  out.textContent = `${action} ${name}…`
  try {
    const res = await fetch(`/api/domains/${encodeURIComponent(name)}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const r = await res.json()
    out.textContent = res.ok ? `${r.domain.name}: ${r.decision.reason}` : `${r.error.code}: ${r.error.message}`
    out.dataset.state = res.ok ? 'ok' : 'refused'
  } catch (e) {
    out.textContent = String(e)
    out.dataset.state = 'refused'
  }
}

export function setupActions () {
  const t = token()
  const panel = $('actions-panel')
  if (t === null || panel === null) return
  panel.hidden = false
  panel.addEventListener('click', (ev) => {
    const action = ev.target instanceof HTMLElement ? ev.target.dataset.action : undefined
    if (action !== undefined) void act(t, action)
  })
}
