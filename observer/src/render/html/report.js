// report.html's timeline: lanes from the embedded JSON, bars and density on a canvas per lane,
// marks as SVG (merged per pixel so any zoom stays light), wheel zoom, drag pan, hover tooltips.
(function () {
  'use strict';
  var errorBox = document.getElementById('page-errors');
  function showError(text) {
    if (!errorBox) return;
    errorBox.hidden = false;
    errorBox.textContent += text + '\n';
  }
  window.addEventListener('error', function (e) { showError('script error: ' + e.message); });

  var dataEl = document.getElementById('timeline-data');
  if (!dataEl) return;
  var D = JSON.parse(dataEl.textContent);
  var root = document.getElementById('timeline');
  var body = root.querySelector('.tl-body');
  var axis = root.querySelector('canvas.tl-axis');
  var rangeLabel = root.querySelector('.tl-range');
  var css = getComputedStyle(document.documentElement);
  function color(name) { return css.getPropertyValue('--' + name).trim(); }
  var COLORS = { wait: color('wait'), call: color('call'), failed: color('failed'), cut: color('cut'), cpu: color('cpu') };
  var WINDOW = color('window'), SNAPSHOT = color('snapshot');
  var span = Math.max(D.span, 1000);
  var pad = span * 0.01;
  var view = { a: -pad, b: span + pad };
  var MIN_RANGE = 1000; // 1 µs

  var tip = document.createElement('div');
  tip.className = 'tl-tip';
  tip.hidden = true;
  document.body.appendChild(tip);
  function showTip(text, x, y) {
    tip.textContent = text;
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - w - 8)) + 'px';
    tip.style.top = (y + 18 + h > window.innerHeight ? y - h - 10 : y + 18) + 'px';
  }
  function hideTip() { tip.hidden = true; }

  function fmtDuration(ns) {
    var a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(a >= 1e10 ? 1 : 3) + ' s';
    if (a >= 1e6) return (ns / 1e6).toFixed(a >= 1e7 ? 1 : 3) + ' ms';
    if (a >= 1e3) return (ns / 1e3).toFixed(a >= 1e4 ? 1 : 3) + ' µs';
    return Math.round(ns) + ' ns';
  }
  function wallTime(ns) {
    var ms = (D.wall0 + ns) / 1e6;
    var d = new Date(ms);
    var micros = String(Math.floor(((D.wall0 + ns) % 1e9) / 1e3)).padStart(6, '0');
    return d.toISOString().slice(11, 19) + '.' + micros + ' UTC';
  }

  // Lanes.
  var lanes = [];
  var frag = document.createDocumentFragment();
  D.processes.forEach(function (p) {
    var proc = document.createElement('div');
    proc.className = 'proc' + (p.chain ? ' chain' : '');
    proc.dataset.pid = p.pid;
    var head = document.createElement('div');
    head.className = 'proc-head';
    head.textContent = 'pid ' + p.pid + ' (' + (p.comm || '?') + ')';
    if (p.exit) {
      var ex = document.createElement('span');
      ex.className = 'exit';
      ex.textContent = 'ended: ' + p.exit;
      head.appendChild(ex);
    }
    proc.appendChild(head);
    p.threads.forEach(function (t) {
      var lane = document.createElement('div');
      lane.className = 'lane' + (t.chain ? ' chain' : '');
      lane.dataset.tid = t.tid;
      lane.dataset.pid = p.pid;
      var label = document.createElement('div');
      label.className = 'lane-label';
      label.title = t.comm + ' — pid ' + p.pid + ', tid ' + t.tid + ', ' + t.calls + ' calls recorded';
      label.textContent = t.comm || '?';
      var ids = document.createElement('span');
      ids.className = 'tid';
      ids.textContent = p.pid + '/' + t.tid;
      label.appendChild(ids);
      var track = document.createElement('div');
      track.className = 'track';
      var canvas = document.createElement('canvas');
      var svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('class', 'marks');
      track.appendChild(canvas);
      track.appendChild(svg);
      lane.appendChild(label);
      lane.appendChild(track);
      proc.appendChild(lane);
      var entry = { el: lane, track: track, canvas: canvas, svg: svg, t: t, visible: true, drawn: null };
      lanes.push(entry);
      track.addEventListener('mousemove', function (e) { hover(entry, e); });
      track.addEventListener('mouseleave', hideTip);
    });
    frag.appendChild(proc);
  });
  body.appendChild(frag);

  // Only lanes on screen are drawn; the others when they scroll into view.
  if ('IntersectionObserver' in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        var lane = e.target.__lane;
        lane.visible = e.isIntersecting;
        if (lane.visible && lane.drawn !== viewKey()) drawLane(lane);
      });
    }, { root: body, rootMargin: '200px 0px' });
    lanes.forEach(function (l) { l.el.__lane = l; io.observe(l.el); });
  }

  function viewKey() { return view.a + ':' + view.b + ':' + (lanes[0] ? lanes[0].track.clientWidth : 0); }
  function x(t, w) { return (t - view.a) / (view.b - view.a) * w; }

  function sizeCanvas(canvas, w, h) {
    var dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return ctx;
  }

  function shade(ctx, w, h) {
    if (D.window) {
      var x0 = x(D.window[0], w), x1 = x(D.window[1], w);
      ctx.fillStyle = WINDOW;
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), h);
    }
    if (D.snapshot !== null && D.snapshot !== undefined) {
      ctx.fillStyle = SNAPSHOT;
      ctx.fillRect(Math.round(x(D.snapshot, w)) - 1, 0, 2, h);
    }
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function markShape(kind, px, h) {
    var el, y = 1;
    switch (kind) {
      case 'failure':
        el = document.createElementNS(SVGNS, 'path');
        el.setAttribute('d', 'M' + (px - 5) + ' ' + y + 'h10l-5 9z');
        break;
      case 'routine-failure':
        el = document.createElementNS(SVGNS, 'rect');
        el.setAttribute('x', px - 1); el.setAttribute('y', y); el.setAttribute('width', 2); el.setAttribute('height', 6);
        break;
      case 'signal': case 'delivery': case 'fault':
        el = document.createElementNS(SVGNS, 'path');
        var r = kind === 'delivery' ? 3.5 : 5;
        el.setAttribute('d', 'M' + px + ' ' + (h / 2 - r) + 'l' + r + ' ' + r + 'l-' + r + ' ' + r + 'l-' + r + ' -' + r + 'z');
        break;
      case 'fork':
        el = document.createElementNS(SVGNS, 'path');
        el.setAttribute('d', 'M' + (px - 5) + ' ' + (h - 1) + 'h10l-5 -8z');
        break;
      case 'exit':
        el = document.createElementNS(SVGNS, 'rect');
        el.setAttribute('x', px - 1.5); el.setAttribute('y', 2); el.setAttribute('width', 3); el.setAttribute('height', h - 4);
        break;
      default: // exec, limit
        el = document.createElementNS(SVGNS, 'rect');
        el.setAttribute('x', px - 4); el.setAttribute('y', h - 9); el.setAttribute('width', 8); el.setAttribute('height', 8);
    }
    el.setAttribute('class', 'mark mark-' + kind);
    return el;
  }

  function drawLane(lane) {
    var w = lane.track.clientWidth, h = lane.track.clientHeight;
    if (!w || !h) return;
    var ctx = sizeCanvas(lane.canvas, w, h);
    shade(ctx, w, h);
    var t = lane.t;
    // Every call, counted per column: the shading under the bars.
    var dn = D.density_ns;
    for (var i = 0; i < t.density.length; i++) {
      var c = t.density[i];
      var x0 = x(c[0] * dn, w), x1 = x((c[0] + 1) * dn, w);
      if (x1 < 0 || x0 > w) continue;
      ctx.fillStyle = 'rgba(92,101,119,' + Math.min(0.55, 0.08 + Math.log10(c[1] + 1) * 0.12) + ')';
      ctx.fillRect(x0, h - 5, Math.max(1, x1 - x0), 4);
    }
    for (var j = 0; j < t.bars.length; j++) {
      var b = t.bars[j];
      var bx0 = x(b[0], w), bx1 = x(b[0] + b[1], w);
      if (bx1 < -1 || bx0 > w + 1) continue;
      ctx.fillStyle = COLORS[b[3]];
      var top = b[3] === 'call' || b[3] === 'failed' ? 8 : 6;
      ctx.fillRect(bx0, top, Math.max(1, bx1 - bx0), h - top - 7);
    }
    // Marks: one element per pixel column and kind, titled with the first line(s) it stands for.
    while (lane.svg.firstChild) lane.svg.removeChild(lane.svg.firstChild);
    var buckets = new Map();
    for (var k = 0; k < t.marks.length; k++) {
      var m = t.marks[k];
      var px = Math.round(x(m[0], w));
      if (px < -5 || px > w + 5) continue;
      var key = px + m[1];
      var bucket = buckets.get(key);
      if (bucket) { bucket.n += 1; if (bucket.lines.length < 3) bucket.lines.push(m[2]); }
      else buckets.set(key, { px: px, kind: m[1], lines: [m[2]], n: 1 });
    }
    var sfrag = document.createDocumentFragment();
    buckets.forEach(function (bk) {
      var el = markShape(bk.kind, bk.px, h);
      el.dataset.lines = bk.lines.join(',');
      el.dataset.n = bk.n;
      var title = document.createElementNS(SVGNS, 'title');
      title.textContent = markText(bk);
      el.appendChild(title);
      sfrag.appendChild(el);
    });
    lane.svg.appendChild(sfrag);
    lane.drawn = viewKey();
  }

  function markText(bk) {
    var text = bk.lines.map(function (i) { return D.texts[i]; }).join('\n');
    if (bk.n > bk.lines.length) text += '\n… and ' + (bk.n - bk.lines.length) + ' more here (zoom in)';
    return text;
  }

  function drawAxis() {
    var w = axis.clientWidth, h = axis.clientHeight;
    var ctx = sizeCanvas(axis, w, h);
    shade(ctx, w, h);
    var range = view.b - view.a;
    var raw = range / Math.max(2, w / 110);
    var pow = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * pow; }).find(function (s) { return s >= raw; });
    ctx.fillStyle = '#5c6577';
    ctx.font = '11px system-ui, sans-serif';
    var unit = step >= 1e9 ? [1e9, 's'] : step >= 1e6 ? [1e6, 'ms'] : step >= 1e3 ? [1e3, 'µs'] : [1, 'ns'];
    var decimals = Math.max(0, -Math.floor(Math.log10(step / unit[0]) + 1e-9));
    for (var t = Math.ceil(view.a / step) * step; t <= view.b; t += step) {
      var px = Math.round(x(t, w)) + 0.5;
      ctx.fillRect(px, h - 7, 1, 7);
      var label = Math.abs(t) < step / 2 ? '0' : (t / unit[0]).toFixed(decimals) + ' ' + unit[1];
      ctx.fillText(label, px + 3, h - 10);
    }
    rangeLabel.textContent = D.order_only
      ? 'order of events only'
      : 'showing ' + fmtDuration(Math.max(0, view.a)) + ' to ' + fmtDuration(Math.min(span, view.b)) +
        ' of ' + fmtDuration(D.span) + ' (from ' + wallTime(Math.max(0, view.a)) + ')';
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      drawAxis();
      lanes.forEach(function (l) { if (l.visible) drawLane(l); else l.drawn = null; });
    });
  }

  function setView(a, b) {
    var range = Math.max(MIN_RANGE, b - a);
    var mid = (a + b) / 2;
    a = mid - range / 2; b = mid + range / 2;
    var lo = -pad, hi = span + pad;
    if (b - a >= hi - lo) { a = lo; b = hi; }
    else if (a < lo) { b += lo - a; a = lo; }
    else if (b > hi) { a -= b - hi; b = hi; }
    view.a = a; view.b = b;
    redraw();
  }
  function zoomAt(frac, factor) {
    var t = view.a + frac * (view.b - view.a);
    var range = (view.b - view.a) * factor;
    setView(t - frac * range, t - frac * range + range);
  }
  function focus(t, tid) {
    var range = Math.max(MIN_RANGE * 50, Math.min(span / 20, view.b - view.a));
    setView(t - range / 2, t + range / 2);
    if (tid) flashLane(tid);
  }
  function flashLane(tid) {
    var lane = lanes.find(function (l) { return String(l.t.tid) === String(tid); });
    if (!lane) return;
    root.scrollIntoView({ block: 'start' });
    lane.el.scrollIntoView({ block: 'nearest' });
    lane.el.classList.add('flash');
    setTimeout(function () { lane.el.classList.remove('flash'); }, 1500);
  }

  function trackFrac(e, el) {
    var r = el.getBoundingClientRect();
    return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  }
  function onWheel(e) {
    e.preventDefault();
    var target = e.currentTarget === body ? e.target.closest('.track') : e.currentTarget;
    if (!target) return;
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      var d = (e.shiftKey ? e.deltaY : e.deltaX) / target.clientWidth * (view.b - view.a);
      setView(view.a + d, view.b + d);
    } else {
      zoomAt(trackFrac(e, target), Math.exp(e.deltaY * 0.0015));
    }
  }
  body.addEventListener('wheel', function (e) { if (e.target.closest('.track')) onWheel(e); }, { passive: false });
  axis.addEventListener('wheel', onWheel, { passive: false });

  var drag = null;
  body.addEventListener('mousedown', function (e) {
    var track = e.target.closest('.track');
    if (!track || e.button !== 0) return;
    drag = { x: e.clientX, a: view.a, b: view.b, w: track.clientWidth, track: track };
    track.classList.add('dragging');
    e.preventDefault();
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var d = (drag.x - e.clientX) / drag.w * (drag.b - drag.a);
    setView(drag.a + d, drag.b + d);
  });
  window.addEventListener('mouseup', function () {
    if (drag) drag.track.classList.remove('dragging');
    drag = null;
  });

  function hover(lane, e) {
    if (drag) return;
    var mark = e.target.closest && e.target.closest('.mark');
    if (mark) {
      var lines = mark.dataset.lines.split(',');
      showTip(markText({ lines: lines, n: Number(mark.dataset.n) }), e.clientX, e.clientY);
      return;
    }
    var w = lane.track.clientWidth;
    var r = lane.track.getBoundingClientRect();
    var px = e.clientX - r.left;
    var best = null, bestDist = 3;
    var bars = lane.t.bars;
    for (var i = 0; i < bars.length; i++) {
      var x0 = x(bars[i][0], w), x1 = Math.max(x0 + 1, x(bars[i][0] + bars[i][1], w));
      var dist = px < x0 ? x0 - px : px > x1 ? px - x1 : 0;
      if (dist < bestDist || (dist === 0 && best && bars[i][1] < best[1])) { best = bars[i]; bestDist = dist; }
    }
    var t = view.a + px / w * (view.b - view.a);
    var where = lane.t.comm + ' ' + lane.el.dataset.pid + '/' + lane.t.tid + ' at +' + fmtDuration(t);
    if (best) showTip(D.texts[best[2]] + '\n' + where, e.clientX, e.clientY);
    else showTip(where, e.clientX, e.clientY);
  }
  // Marks receive the pointer (the SVG above the canvas lets it through elsewhere).
  body.addEventListener('mouseover', function (e) {
    var mark = e.target.closest && e.target.closest('.mark');
    if (mark) showTip(markText({ lines: mark.dataset.lines.split(','), n: Number(mark.dataset.n) }), e.clientX, e.clientY);
  });

  root.querySelectorAll('.tl-controls button').forEach(function (button) {
    button.addEventListener('click', function () {
      var z = button.dataset.zoom;
      if (z === 'all') setView(-pad, span + pad);
      else if (z === 'in') zoomAt(0.5, 0.5);
      else if (z === 'out') zoomAt(0.5, 2);
      else if (z === 'window' && D.window) {
        var extra = (D.window[1] - D.window[0]) * 0.1 + MIN_RANGE;
        setView(D.window[0] - extra, D.window[1] + extra);
      }
    });
  });
  if (!D.window) root.querySelector('button[data-zoom="window"]').disabled = true;

  document.querySelectorAll('.evidence li[data-t]').forEach(function (li) {
    li.title = 'show in the timeline';
    li.addEventListener('click', function () { focus(Number(li.dataset.t), li.dataset.tid); });
  });
  document.querySelectorAll('table.stuck tr[data-tid]').forEach(function (tr) {
    tr.title = 'show this thread in the timeline';
    tr.addEventListener('click', function () { flashLane(tr.dataset.tid); });
  });

  window.addEventListener('resize', redraw);
  drawAxis();
  // The first screenfuls now; the rest as they scroll into view.
  lanes.slice(0, 80).forEach(drawLane);
})();
