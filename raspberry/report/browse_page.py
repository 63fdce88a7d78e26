"""The build's rows as one static HTML page (<build>/browse.html): every item of browse.py,
searchable and filterable in the browser, no server needed; the report links to it.

The filters live in the page's address after '#' (q, source, outcome, stage, min_turns; id opens
one row), so a view can be bookmarked or passed on, and a test can open one in a headless
browser.
"""

from __future__ import annotations

import html
import json

from raspberry.build_files.store import BuildStore
from raspberry.report.browse import Item

BROWSER_NAME = "browse.html"

_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
#controls{display:flex;gap:.6em;flex-wrap:wrap;align-items:center;margin-bottom:.8em}
input,select{font-size:14px;padding:3px}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}
tr.item{cursor:pointer}tr.item:hover{background:#fdf0f5}
.prompt{max-width:46em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#detail{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin-top:1em}
#detail pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;margin:.3em 0}
.role{font-weight:bold;color:#c2185b}
"""

_SCRIPT = """
const items = JSON.parse(document.getElementById('items').textContent);
const $ = id => document.getElementById(id);
const keys = ['q', 'source', 'outcome', 'stage', 'min_turns'];
for (const [id, field] of [['source', 'source'], ['outcome', 'outcome'], ['stage', 'stage']]) {
  for (const v of [...new Set(items.map(i => i[field]))].sort()) {
    $(id).add(new Option(v, v));
  }
}
function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of keys) { $(k).value = p.get(k) || ''; }
}
function toHash() {
  const p = new URLSearchParams();
  for (const k of keys) { if ($(k).value) p.set(k, $(k).value); }
  history.replaceState(null, '', '#' + p.toString());
}
function text(i) {
  return [i.id, i.question_id, i.prompt, i.reason, i.monologue, i.task].join(' ').toLowerCase();
}
function render() {
  const q = $('q').value.toLowerCase(), turns = parseFloat($('min_turns').value);
  const shown = items.filter(i =>
    (!q || text(i).includes(q)) && (!$('source').value || i.source === $('source').value) &&
    (!$('outcome').value || i.outcome === $('outcome').value) &&
    (!$('stage').value || i.stage === $('stage').value) &&
    (isNaN(turns) || (i.turns !== null && i.turns >= turns)));
  $('count').textContent = `${shown.length} of ${items.length} rows`;
  const body = $('rows');
  body.replaceChildren();
  for (const i of shown.slice(0, 1000)) {
    const tr = body.insertRow();
    tr.className = 'item';
    tr.dataset.id = i.id;
    for (const v of [i.id.slice(0, 10), i.source, i.task, i.outcome, i.reason, i.turns ?? '',
                     i.cost ? '$' + i.cost.toFixed(4) : '', i.prompt]) {
      const td = tr.insertCell();
      td.textContent = v;
    }
    tr.lastChild.className = 'prompt';
    tr.onclick = () => show(i);
  }
}
function block(title, parts) {
  const div = document.createElement('div');
  const h = document.createElement('h3');
  h.textContent = title;
  div.append(h);
  for (const [role, content] of parts) {
    const r = document.createElement('div');
    r.className = 'role';
    r.textContent = role;
    const pre = document.createElement('pre');
    pre.textContent = content;
    div.append(r, pre);
  }
  return div;
}
function show(i) {
  const facts = [['question', i.prompt], ['reference', i.reference],
                 ['outcome', `${i.outcome} at ${i.stage}${i.reason ? ': ' + i.reason : ''}`]];
  if (i.checks.length) facts.push(['checks', i.checks.join('\\n')]);
  $('detail').replaceChildren(
    block(`Dialogue (${i.dialogue.length} turns)`, i.dialogue.length ? i.dialogue : facts),
    block('Monologue exported', i.monologue ? [['assistant', i.monologue], ...facts] : facts));
  $('detail').scrollIntoView();
}
for (const k of keys) { $(k).oninput = () => { toHash(); render(); }; }
function opened() {
  const id = new URLSearchParams(location.hash.slice(1)).get('id');
  const item = id && items.find(i => i.id.startsWith(id));
  if (item) show(item);
}
window.onhashchange = () => { fromHash(); render(); opened(); };
fromHash();
render();
opened();
"""


def render_browser(build_id: str, found: list[Item]) -> str:
    data = json.dumps([i.as_dict() for i in found]).replace("</", "<\\/")
    title = f"Raspberry build {html.escape(build_id)}: rows"
    heads = "".join(
        f"<th>{h}</th>"
        for h in ("id", "source", "task", "outcome", "reason", "turns", "cost", "question")
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>"
        "<div id='controls'><input id='q' placeholder='search questions, reasons, answers' "
        "size='40'><select id='source'><option value=''>every source</option></select>"
        "<select id='outcome'><option value=''>every outcome</option></select>"
        "<select id='stage'><option value=''>every stage</option></select>"
        "<input id='min_turns' type='number' min='1' placeholder='turns at least'>"
        "<span id='count'></span></div>"
        f"<table><thead><tr>{heads}</tr></thead><tbody id='rows'></tbody></table>"
        "<div id='detail'></div>"
        f"<script type='application/json' id='items'>{data}</script>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_browser(store: BuildStore, found: list[Item]) -> str:
    """Write <build>/browse.html whole; return its URL."""
    store.files.write_text(BROWSER_NAME, render_browser(store.build_id, found))
    return store.files.url(BROWSER_NAME)
