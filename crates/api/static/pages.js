// neo-backfill dashboard: what every page does besides the wizard (dashboard.js).
// - Times: every <time datetime data-zone> is shown in the backfill's zone (the server's text),
//   in UTC or in the viewer's zone, by one switch in the header; the choice is remembered.
//   Hovering any time gives all three. A <time data-viewer> (an ETA, shown beside its text in
//   the backfill's zone) is in the viewer's zone unless the switch says UTC.
// - Copy buttons for ids.
// - The backfill page follows its live part: a new state refreshes the buttons; progress reloads
//   the items table (same filter and page), unless the operator is typing in it, and the diff
//   table of a psa_actions backfill.
// No eval, no inline handlers (the page's CSP forbids both).
(function () {
  "use strict";

  var MODES = ["zone", "utc", "local"];
  var LABEL = { zone: "Backfill's zone", utc: "UTC", local: "Your zone" };
  var KEY = "neo-times";

  function mode() {
    try { var m = window.localStorage.getItem(KEY); if (MODES.indexOf(m) >= 0) { return m; } } catch (e) { /* private mode */ }
    return "zone";
  }

  function fmt(date, zone) {
    var o = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    if (zone) { o.timeZone = zone; }
    try { return new Intl.DateTimeFormat("en-GB", o).format(date); } catch (e) { return null; }
  }

  function applyTimes(root) {
    var m = mode();
    var viewer = "";
    try { viewer = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* none */ }
    Array.prototype.forEach.call((root || document).querySelectorAll("time[datetime]"), function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      var zone = t.getAttribute("data-zone") || "UTC";
      if (!t.hasAttribute("data-server")) { t.setAttribute("data-server", t.textContent); }
      var inZone = fmt(d, zone), utc = fmt(d, "UTC"), local = fmt(d, viewer || undefined);
      var parts = [];
      if (inZone) { parts.push(inZone + " (" + zone + ")"); }
      if (local && viewer && viewer !== zone) { parts.push(local + " (your zone, " + viewer + ")"); }
      if (utc && zone !== "UTC") { parts.push(utc); }
      if (t.hasAttribute("data-relative")) {
        t.title = parts.join(" · ");
        return;
      }
      t.title = parts.join(" · ");
      // A data-viewer time (an ETA) is the viewer's own: in their zone unless the switch says UTC.
      var text = m === "utc" ? utc : (m === "local" || t.hasAttribute("data-viewer")) ? local : null;
      t.textContent = text || t.getAttribute("data-server");
    });
    var sw = document.getElementById("time-switch");
    if (sw) {
      sw.textContent = "Times: " + LABEL[m];
      sw.setAttribute("aria-label", "Times shown in: " + LABEL[m] + ". Switch.");
    }
  }

  function initSwitch() {
    var sw = document.getElementById("time-switch");
    if (!sw) { return; }
    // Offered where there are times to switch.
    sw.hidden = !document.querySelector("time[datetime]");
    sw.addEventListener("click", function () {
      var next = MODES[(MODES.indexOf(mode()) + 1) % MODES.length];
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* not kept */ }
      applyTimes(document);
    });
  }

  function initCopy() {
    document.body.addEventListener("click", function (ev) {
      var b = ev.target.closest && ev.target.closest("button[data-copy]");
      if (!b) { return; }
      var text = b.getAttribute("data-copy");
      var done = function () { b.textContent = "copied"; setTimeout(function () { b.textContent = "copy"; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { b.textContent = "select and copy"; });
      } else { b.textContent = "select and copy"; }
    });
  }

  function fire(name) {
    if (window.htmx) { window.htmx.trigger(document.body, name); }
    else { document.body.dispatchEvent(new Event(name)); }
  }

  // The backfill page: when the polled part shows a new state, the buttons and items refresh.
  function initLiveState() {
    var live = document.getElementById("live");
    if (!live) { return; }
    var state = live.getAttribute("data-state");
    document.body.addEventListener("htmx:afterSettle", function () {
      var now = document.getElementById("live");
      var s = now && now.getAttribute("data-state");
      if (s && s !== state) { state = s; fire("state-changed"); }
    });
  }

  // The items table (and a psa_actions backfill's diff table, and the Failures section) reload
  // when the live part shows a change in the counts.
  function initLiveItems() {
    var live = document.getElementById("live");
    if (!live) { return; }
    var seen = live.getAttribute("data-counts");
    document.body.addEventListener("htmx:afterSettle", function () {
      var now = document.getElementById("live");
      var counts = now && now.getAttribute("data-counts");
      if (!counts || counts === seen) { return; }
      seen = counts;
      if (!window.htmx) { return; }
      var changes = document.getElementById("changes");
      if (changes) { window.htmx.trigger(changes, "live-updated"); }
      // The Failures section (not while a Rerun this cause form has the focus).
      var failures = document.getElementById("failures");
      if (failures && !failures.contains(document.activeElement)) {
        window.htmx.trigger(failures, "live-updated");
      }
      var items = document.getElementById("items");
      if (!items || items.contains(document.activeElement)) { return; }
      window.htmx.trigger(items, "live-updated");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSwitch();
    initCopy();
    initLiveState();
    initLiveItems();
    applyTimes(document);
    document.body.addEventListener("htmx:afterSettle", function (ev) { applyTimes(ev.target); });
  });
})();
