// neo-backfill dashboard: the new-backfill wizard (steps, rule builder, windows editor).
// Everything else is server-rendered and refreshed with htmx. No eval, no inline handlers.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function fire(name) {
    if (window.htmx) { window.htmx.trigger(document.body, name); }
    else { document.body.dispatchEvent(new Event(name)); }
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; }
      else if (k === "value") { e.value = attrs[k]; }
      else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  // ---- wizard steps ------------------------------------------------------------------------
  function initWizard(form) {
    var steps = $$(".step", form);
    function show(n) {
      steps.forEach(function (s) { s.hidden = s.getAttribute("data-step") !== String(n); });
      $$(".steps button", form).forEach(function (b) {
        if (b.getAttribute("data-goto") === String(n)) { b.setAttribute("aria-current", "step"); }
        else { b.removeAttribute("aria-current"); }
      });
      if (n === 3) { fire("windows-changed"); }
      if (n === 4) { fire("review"); }
      var h = $("#step-" + n + " h2", form);
      if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
    }
    function check(n) {
      var msg = $("#step-" + n + " .step-msg", form);
      var problem = null;
      if (n === 1 && !$("input[name=workflow]:checked", form)) { problem = "Pick a workflow to continue."; }
      if (n === 2) {
        var raw = $("#filter_spec", form).value.trim();
        try { JSON.parse(raw); } catch (e) { problem = "The filter is not valid JSON: " + e.message; }
      }
      if (msg) { msg.hidden = !problem; msg.textContent = problem || ""; }
      return !problem;
    }
    form.addEventListener("click", function (ev) {
      var t = ev.target.closest("button");
      if (!t || !form.contains(t)) { return; }
      if (t.hasAttribute("data-goto")) { show(Number(t.getAttribute("data-goto"))); }
      if (t.hasAttribute("data-next")) {
        var to = Number(t.getAttribute("data-next"));
        if (check(to - 1)) { show(to); }
      }
    });
  }

  // ---- rule builder (docs/api.md §5: react-querybuilder rule groups) -------------------------------
  var FIELDS = [
    ["$id", "Id"], ["$created", "Created"], ["$updated", "Updated"], ["$closed", "Closed"],
    ["$company", "Company"], ["$status", "Status"], ["$priority", "Priority"], ["$queue", "Queue / board"],
    ["$assignee", "Assignee"], ["native", "Native PSA field…"], ["custom", "Custom field…"]
  ];
  var OPERATORS = [
    ["=", "="], ["!=", "≠"], ["<", "<"], ["<=", "≤"], [">", ">"], [">=", "≥"],
    ["in", "in list"], ["notIn", "not in list"], ["between", "between"],
    ["contains", "contains"], ["doesNotContain", "does not contain"], ["beginsWith", "begins with"],
    ["endsWith", "ends with"], ["null", "is empty"], ["notNull", "is not empty"]
  ];
  var MAX_DEPTH = 4;

  function scalar(text, field) {
    var s = text.trim();
    if (/^P(\d+[YMWD])+(T(\d+[HMS])+)?$|^PT(\d+[HMS])+$/.test(s)) { return { "$ago": s }; }
    if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s)) {
      return { "$datetime": s.length === 10 ? s + "T00:00:00Z" : s };
    }
    if (s === "true" || s === "false") { return s === "true"; }
    if (/^-?\d+(\.\d+)?$/.test(s) && field !== "custom") { return Number(s); }
    return s;
  }

  function unscalar(v) {
    if (v && typeof v === "object") { return v["$ago"] || v["$datetime"] || JSON.stringify(v); }
    return v === undefined || v === null ? "" : String(v);
  }

  function selectOf(options, value, cls) {
    var s = el("select", { "class": cls });
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (o[0] === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }

  function labelled(text, control) {
    var id = nextId("rb");
    control.id = id;
    var l = el("label", { "for": id, text: text });
    l.appendChild(control);
    return l;
  }

  function ruleNode(rule) {
    var fieldKind = rule.custom_field !== undefined ? "custom"
      : (rule.field && rule.field.charAt(0) !== "$" ? "native" : (rule.field || "$status"));
    var field = selectOf(FIELDS, fieldKind, "rb-field");
    var path = el("input", { "class": "rb-path", placeholder: "e.g. board/name", value: rule.custom_field || (fieldKind === "native" ? rule.field : "") || "" });
    var op = selectOf(OPERATORS, rule.operator || "=", "rb-op");
    var value = el("input", { "class": "rb-value", placeholder: "value; lists: a, b; dates: 2026-04-01 or P30D" });
    var v = rule.value;
    value.value = Array.isArray(v) ? v.map(unscalar).join(", ") : unscalar(v);
    var remove = el("button", { type: "button", "class": "small-button rb-remove", text: "Remove rule" });
    var pathLabel = labelled("Field path / name", path);
    var valueLabel = labelled("Value", value);
    function sync() {
      pathLabel.hidden = field.value !== "native" && field.value !== "custom";
      valueLabel.hidden = op.value === "null" || op.value === "notNull";
    }
    field.addEventListener("change", sync);
    op.addEventListener("change", sync);
    var n = el("div", { "class": "rule" }, [labelled("Field", field), pathLabel, labelled("Operator", op), valueLabel, remove]);
    sync();
    return n;
  }

  function groupNode(group, depth) {
    var comb = selectOf([["and", "all of (and)"], ["or", "any of (or)"]], (group.combinator || "and").toLowerCase(), "rb-comb");
    var rules = el("div", { "class": "rules" });
    var addRule = el("button", { type: "button", "class": "small-button rb-add-rule", text: "Add rule" });
    var addGroup = el("button", { type: "button", "class": "small-button rb-add-group", text: "Add group" });
    if (depth >= MAX_DEPTH) { addGroup.disabled = true; addGroup.title = "Groups nest at most 4 deep"; }
    var head = el("div", { "class": "group-head" }, [labelled("Match", comb), addRule, addGroup]);
    if (depth > 1) { head.appendChild(el("button", { type: "button", "class": "small-button rb-remove-group", text: "Remove group" })); }
    var g = el("div", { "class": "group", "data-depth": String(depth) }, [head, rules]);
    (group.rules || []).forEach(function (r) {
      rules.appendChild(r.rules ? groupNode(r, depth + 1) : ruleNode(r));
    });
    return g;
  }

  function readGroup(g) {
    var out = { combinator: $(".rb-comb", g).value, rules: [] };
    Array.prototype.forEach.call($(".rules", g).children, function (c) {
      if (c.classList.contains("group")) { out.rules.push(readGroup(c)); return; }
      var kind = $(".rb-field", c).value;
      var op = $(".rb-op", c).value;
      var rule = {};
      var path = $(".rb-path", c).value.trim();
      if (kind === "custom") { rule.custom_field = path; }
      else { rule.field = kind === "native" ? path : kind; }
      rule.operator = op;
      var raw = $(".rb-value", c).value;
      if (op === "in" || op === "notIn" || op === "between") {
        rule.value = raw.split(",").map(function (x) { return x.trim(); }).filter(Boolean)
          .map(function (x) { return scalar(x, kind); });
      } else if (op !== "null" && op !== "notNull") {
        rule.value = scalar(raw, kind);
      }
      out.rules.push(rule);
    });
    return out;
  }

  function initBuilder(form) {
    var root = $("#builder", form);
    var textarea = $("#filter_spec", form);
    var jsonBox = $("#json-editor", form);
    if (!root || !textarea) { return; }
    var limit = el("input", { type: "number", min: "1", "class": "rb-limit", placeholder: "no limit" });
    var top;
    function write() {
      var spec = { conditions: readGroup(top) };
      if (limit.value) { spec.limit = Number(limit.value); }
      textarea.value = JSON.stringify(spec, null, 2);
    }
    function build(spec) {
      root.textContent = "";
      var cond = spec && spec.conditions ? spec.conditions : { combinator: "and", rules: [{ field: "$closed", operator: "=", value: false }] };
      top = groupNode(cond, 1);
      limit.value = spec && spec.limit ? spec.limit : "";
      root.appendChild(top);
      root.appendChild(el("div", { "class": "row" }, [labelled("Stop after (limit)", limit)]));
    }
    function mode() {
      var m = ($("input[name=filter_mode]:checked", form) || {}).value;
      root.hidden = m !== "builder";
      jsonBox.hidden = m === "builder";
      if (m === "builder") {
        var spec = null;
        try { spec = JSON.parse(textarea.value); } catch (e) { spec = null; }
        build(spec && spec.conditions ? spec : null);
        write();
      }
    }
    root.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) { return; }
      var g = b.closest(".group");
      if (b.classList.contains("rb-add-rule")) { $(".rules", g).appendChild(ruleNode({ field: "$status", operator: "=", value: "" })); }
      if (b.classList.contains("rb-add-group")) {
        $(".rules", g).appendChild(groupNode({ combinator: "or", rules: [{ field: "$priority", operator: "=", value: "" }] }, Number(g.getAttribute("data-depth")) + 1));
      }
      if (b.classList.contains("rb-remove")) { b.closest(".rule").remove(); }
      if (b.classList.contains("rb-remove-group")) { g.remove(); }
      write();
    });
    root.addEventListener("input", write);
    root.addEventListener("change", write);
    $$("input[name=filter_mode]", form).forEach(function (r) { r.addEventListener("change", mode); });
    mode();
  }

  // ---- execution windows ------------------------------------------------------------------
  var PRESETS = {
    weeknights: { monday: [["22:00", "06:00"]], tuesday: [["22:00", "06:00"]], wednesday: [["22:00", "06:00"]], thursday: [["22:00", "06:00"]], friday: [["22:00", "06:00"]] },
    business: { monday: [["09:00", "17:00"]], tuesday: [["09:00", "17:00"]], wednesday: [["09:00", "17:00"]], thursday: [["09:00", "17:00"]], friday: [["09:00", "17:00"]] },
    weekends: { saturday: [["00:00", "23:59"]], sunday: [["00:00", "23:59"]] },
    clear: {}
  };

  function initWindows(form) {
    var editor = $("#windows-editor", form);
    var tpl = $("#window-row");
    if (!editor || !tpl) { return; }
    function addRow(day, start, end) {
      var box = $(".day[data-day=" + day + "] .rows", form);
      var row = tpl.content.firstElementChild.cloneNode(true);
      var s = $("input[data-part=start]", row);
      var e = $("input[data-part=end]", row);
      s.name = day + "_start"; e.name = day + "_end";
      s.value = start || ""; e.value = end || "";
      var label = day.charAt(0).toUpperCase() + day.slice(1);
      s.setAttribute("aria-label", label + " window start");
      e.setAttribute("aria-label", label + " window end");
      box.appendChild(row);
      return row;
    }
    function mode() {
      var m = ($("input[name=windows_mode]:checked", form) || {}).value;
      editor.hidden = m !== "windows";
      if (m === "windows" && !$(".window-row", editor)) { applyPreset("weeknights"); }
      fire("windows-changed");
    }
    function applyPreset(name) {
      $$(".window-row", editor).forEach(function (r) { r.remove(); });
      var p = PRESETS[name] || {};
      Object.keys(p).forEach(function (day) { p[day].forEach(function (w) { addRow(day, w[0], w[1]); }); });
    }
    editor.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) { return; }
      if (b.hasAttribute("data-add")) { var r = addRow(b.getAttribute("data-add"), "", ""); $("input", r).focus(); }
      if (b.hasAttribute("data-remove")) { b.closest(".window-row").remove(); }
      if (b.hasAttribute("data-preset")) { applyPreset(b.getAttribute("data-preset")); }
      fire("windows-changed");
    });
    editor.addEventListener("change", function () { fire("windows-changed"); });
    $$("input[name=windows_mode]", form).forEach(function (r) { r.addEventListener("change", mode); });
    var tz = $("#timezone", form);
    if (tz) {
      // Default: the browser's time zone.
      try {
        var browser = Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (browser && tz.value === "UTC") { tz.value = browser; }
      } catch (e) { /* keep UTC */ }
      tz.addEventListener("change", function () { fire("windows-changed"); });
    }
    var mif = $("#max_in_flight", form);
    if (mif) { mif.addEventListener("change", function () { fire("windows-changed"); }); }
  }

  // The backfill page: when the polled part shows a new state, refresh the buttons and items.
  function initLive() {
    var live = $("#live");
    if (!live) { return; }
    var state = live.getAttribute("data-state");
    document.body.addEventListener("htmx:afterSettle", function () {
      var now = $("#live");
      var s = now && now.getAttribute("data-state");
      if (s && s !== state) { state = s; fire("state-changed"); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initLive();
    var form = $("#wizard");
    if (!form) { return; }
    initWizard(form);
    initBuilder(form);
    initWindows(form);
  });
})();
