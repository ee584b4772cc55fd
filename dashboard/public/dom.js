// Building the page's DOM from data without ever parsing data as markup: every string becomes a
// text node (textContent), attributes are set one by one, and no attribute is taken from data
// except through setAttribute on names written here. No innerHTML anywhere.

const SVG = 'http://www.w3.org/2000/svg'

/** An HTML element: h('td', { class: 'num' }, 'text', child, …). null/undefined children are skipped. */
export function h (tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children)
}

/** An SVG element, the same way. */
export function s (tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children)
}

function fill (el, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (/^on/i.test(k)) throw new Error(`no event handler attributes (${k})`)
    el.setAttribute(k, String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(typeof c === 'object' ? c : document.createTextNode(String(c)))
  }
  return el
}

/** Replaces a table body's rows, or shows one row saying there is nothing. */
export function rows (tbody, trs, empty, columns) {
  tbody.replaceChildren(...(trs.length > 0 ? trs : [h('tr', {}, h('td', { class: 'empty', colspan: columns }, empty))]))
}

export function badge (text) { return h('span', { class: `badge ${String(text).replace(/[^a-z-]/gi, '')}` }, text) }

export const fmt = (n, digits = 1) => (n === undefined || n === null || !Number.isFinite(n)) ? '–' : n.toFixed(digits)
export const pct = (x) => (x === undefined || x === null) ? '–' : `${(x * 100).toFixed(0)}%`
export const time = (ms) => ms === undefined || ms === null ? '–' : new Date(ms).toLocaleTimeString([], { hour12: false })
export function ago (ms, now = Date.now()) {
  if (ms === undefined || ms === null) return '–'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`
}
export function bytes (n) {
  if (n === undefined || n === null) return '–'
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`
}
