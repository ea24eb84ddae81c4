// The console's stylesheet and script, served by the sidecar itself (no CDN, no build step). The script
// is optional: without it every page works; with it, pages refresh every 30 s while the tab is visible
// (a checkbox turns that off, remembered) and the rows of the listings page shown can be filtered as you type.

export const consoleCss = `:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa;
--accent:#0a5bd8;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--s1:#0a5bd8;--s2:#bf3989;--s3:#1a7f37;--s4:#8250df;--budget:#57606a}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#30363d;--panel:#161b22;
--accent:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--s1:#4493f8;--s2:#db61a2;--s3:#3fb950;--s4:#a371f7;--budget:#9198a1}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--panel);padding:4px 8px}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.top{display:flex;gap:24px;align-items:center;padding:10px 24px;border-bottom:1px solid var(--line);background:var(--panel)}
.brand{margin:0;font-weight:700}.top nav a{margin-right:16px;text-decoration:none}.top nav a[aria-current=page]{font-weight:700;text-decoration:underline}
main{padding:16px 24px 48px;max-width:1280px}h1{font-size:1.6rem;margin:.3em 0}h2{font-size:1.15rem;margin:1.6em 0 .5em}h3{font-size:1rem;margin:0}
.meta,.none,small{color:var(--muted)}small{font-size:.85em}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px;margin:12px 0}
.stat{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:var(--panel)}
.stat dt{font-size:.85em;color:var(--muted)}.stat dd{margin:0;font-size:1.35rem;font-weight:600}.stat dd small{display:block;font-size:.75rem;font-weight:400}
.stat dd time{font-size:.8rem;font-weight:500}time{white-space:nowrap}td code{overflow-wrap:anywhere}
.plot .dot{stroke:none}.plot circle.s-1{fill:var(--s1)}.plot circle.s-2{fill:var(--s2)}.plot circle.s-3{fill:var(--s3)}
.plot circle.s-4{fill:var(--s4)}.plot circle.s-ok{fill:var(--ok)}.plot circle.s-warn{fill:var(--warn)}.plot circle.s-bad{fill:var(--bad)}
.plot circle.s-budget{fill:var(--budget)}.plot .line.s-warn,.plot .line.s-bad{stroke-dasharray:6 3}
.stat.bad{border-color:var(--bad)}.stat.bad dd{color:var(--bad)}.stat.warn{border-color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:8px 0}caption{text-align:left;color:var(--muted);padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}thead th{font-size:.85em;color:var(--muted)}
tr.warn td{background:color-mix(in srgb,var(--warn) 12%,transparent)}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:.8em;border:1px solid var(--line)}
.kind-primary{border-color:var(--bad)}.kind-imported{border-color:var(--accent)}.kind-held{border-color:var(--warn)}.kind-operator{border-color:var(--s4)}
.peers{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 12px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:5px;background:var(--muted)}
.health.ok .dot{background:var(--ok)}.health.failing .dot{background:var(--bad)}.health.failing{color:var(--bad)}.bad{color:var(--bad)}
.search{display:flex;gap:8px;align-items:center;margin:8px 0}.search input,.filter input{font:inherit;padding:4px 8px;min-width:18em;background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:4px}
button{font:inherit;padding:4px 12px;border-radius:4px;border:1px solid var(--line);background:var(--panel);color:var(--fg)}
.pager{display:flex;gap:16px;margin:12px 0}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px 24px}.plots h2{grid-column:1/-1}
.plot{margin:0}.plot svg{width:100%;height:180px;display:block;border:1px solid var(--line);border-radius:6px;background:var(--panel)}
.plot .grid{stroke:var(--line);stroke-width:1}.plot .tick{fill:var(--muted);font-size:11px}
.plot .line{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke}.plot .dashed{stroke-dasharray:5 4}
.s-1{stroke:var(--s1);background:var(--s1)}.s-2{stroke:var(--s2);background:var(--s2)}.s-3{stroke:var(--s3);background:var(--s3)}
.s-4{stroke:var(--s4);background:var(--s4)}.s-ok{stroke:var(--ok);background:var(--ok)}.s-warn{stroke:var(--warn);background:var(--warn)}
.s-bad{stroke:var(--bad);background:var(--bad)}.s-budget{stroke:var(--budget);background:var(--budget)}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:4px 14px;margin:2px 0 0;padding:0;font-size:.85em}
.swatch{display:inline-block;width:14px;height:3px;margin-right:5px;vertical-align:middle}
.timeline{list-style:none;padding:0;margin:0;border-left:2px solid var(--line)}
.decision{margin:0 0 12px;padding:4px 0 4px 14px;position:relative}
.decision::before{content:"";position:absolute;left:-6px;top:10px;width:10px;height:10px;border-radius:50%;background:var(--muted)}
.decision.kind-primary::before{background:var(--bad)}.decision.kind-imported::before{background:var(--accent)}.decision.kind-held::before{background:var(--warn)}
.decision header{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}.decision p{margin:4px 0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0}.facts div{display:contents}.facts dt{color:var(--muted)}.facts dd{margin:0}
.facts ul{margin:0;padding-left:1.2em}.json{background:var(--panel);border:1px solid var(--line);padding:8px;overflow:auto;border-radius:6px}
.refresh{margin-left:auto;font-size:.85em;color:var(--muted)}
`;

export const consoleJs = `'use strict';
(() => {
  const body = document.body;
  const seconds = Number(body.dataset.refresh || 0);
  if (seconds > 0) {
    const key = 'icalpush-console-refresh';
    const label = document.createElement('label');
    label.className = 'refresh';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = localStorage.getItem(key) !== 'off';
    label.append(box, ' refresh every ' + seconds + ' s');
    document.querySelector('.top')?.append(label);
    box.addEventListener('change', () => localStorage.setItem(key, box.checked ? 'on' : 'off'));
    setInterval(() => {
      const typing = document.activeElement && document.activeElement.tagName === 'INPUT' && document.activeElement.type === 'search';
      if (box.checked && document.visibilityState === 'visible' && !typing) location.reload();
    }, seconds * 1000);
  }
  for (const input of document.querySelectorAll('input[data-filter-rows]')) {
    const table = document.getElementById(input.dataset.filterRows);
    if (!table) continue;
    input.closest('label').hidden = false;
    input.addEventListener('input', () => {
      const q = input.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) row.hidden = q !== '' && !(row.dataset.filter || '').includes(q);
    });
  }
})();
`;
