// /ops live updates (progressive enhancement: the page works without this file).
// Every 5 s: fetch the same view's fragments from /ops/live and swap the summary and the list,
// unless the tab is hidden or the operator is in the middle of a form.
(function () {
  var root = document.querySelector('.ops[data-live]');
  if (!root || !window.fetch || !window.DOMParser) return;
  var state = document.getElementById('ops-live-state');
  var busy = false;
  document.addEventListener('submit', function () { busy = true; });
  function inForm() {
    var a = document.activeElement;
    return a && a.closest && a.closest('#ops-list form, #ops-summary form');
  }
  function refresh() {
    if (busy || document.hidden || inForm()) return;
    fetch(root.getAttribute('data-live'), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok || r.status === 400 ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || busy) { if (state) state.textContent = 'Live updates paused'; return; }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        ['ops-summary', 'ops-list'].forEach(function (id) {
          var fresh = doc.getElementById(id), here = document.getElementById(id);
          if (fresh && here) here.innerHTML = fresh.innerHTML;
        });
        if (state) state.textContent = 'Live · updated ' + new Date().toLocaleTimeString();
      })
      .catch(function () { if (state) state.textContent = 'Live updates paused (offline)'; });
  }
  if (state) state.textContent = 'Live';
  setInterval(refresh, 5000);
})();
