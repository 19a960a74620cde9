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
  // A later step opens only after the server has checked the ones before it (POST
  // /backfills/check runs the API's own rules). Problems come back as
  // <template class="wizard-marks" data-step="N"> holding one element per problem (or note),
  // keyed by its input's id: markStep puts each next to its input (#err-<input>,
  // #note-<input>), marks the input aria-invalid and links it with aria-describedby. The
  // preflight, the windows summary and a refused create answer with the same templates.
  var MARKABLE = "input, select, textarea, [role=radiogroup]";

  function describedBy(input, id, add) {
    var ids = (input.getAttribute("aria-describedby") || "").split(/\s+/)
      .filter(function (x) { return x && x !== id; });
    if (add) { ids.push(id); }
    if (ids.length) { input.setAttribute("aria-describedby", ids.join(" ")); }
    else { input.removeAttribute("aria-describedby"); }
  }

  // Replaces every mark of one step with the marks of `tpl`; returns the problems' count and
  // the marks whose input is not on the page (shown in the step's message instead).
  function markStep(form, tpl) {
    var step = $("#step-" + tpl.getAttribute("data-step"), form);
    if (!step) { return { count: 0, loose: [] }; }
    $$(".field-error, .field-note", step).forEach(function (m) {
      var old = document.getElementById(m.getAttribute("data-input") || "");
      if (old) { describedBy(old, m.id, false); old.removeAttribute("aria-invalid"); }
      m.remove();
    });
    var out = { count: 0, loose: [] };
    Array.prototype.forEach.call(tpl.content.children, function (m) {
      var mark = m.cloneNode(true);
      var error = mark.classList.contains("field-error");
      if (error) { out.count += 1; }
      var input = document.getElementById(mark.getAttribute("data-input") || "");
      if (!input || !step.contains(input)) { if (error) { out.loose.push(mark); } return; }
      (input.closest(".window-row") || input).insertAdjacentElement("afterend", mark);
      if (error && input.matches(MARKABLE)) { input.setAttribute("aria-invalid", "true"); }
      describedBy(input, mark.id, true);
    });
    return out;
  }

  // Applies every marks template under `root`; returns {step: markStep's answer}.
  function applyMarks(form, root) {
    var out = {};
    $$("template.wizard-marks", root).forEach(function (t) {
      out[t.getAttribute("data-step")] = markStep(form, t);
    });
    return out;
  }

  function stepMessage(form, n, text, loose) {
    var msg = $("#step-" + n + " .step-msg", form);
    if (!msg) { return; }
    msg.textContent = text || "";
    (loose || []).forEach(function (m) {
      msg.appendChild(document.createTextNode(" "));
      Array.prototype.forEach.call(m.childNodes, function (c) { msg.appendChild(c.cloneNode(true)); });
    });
    msg.hidden = !msg.textContent.trim();
  }

  function initWizard(form) {
    var steps = $$(".step", form);
    var current = 1;
    var checking = false;
    function show(n) {
      current = n;
      steps.forEach(function (s) { s.hidden = s.getAttribute("data-step") !== String(n); });
      $$(".steps button", form).forEach(function (b) {
        if (b.getAttribute("data-goto") === String(n)) { b.setAttribute("aria-current", "step"); }
        else { b.removeAttribute("aria-current"); }
      });
      if (n === 3) { fire("windows-changed"); }
      if (n === 4) { fire("review"); }
      var target = $("#step-" + n + " [aria-invalid=true]", form) || $("#step-" + n + " h2", form);
      if (target) { if (target.tagName === "H2") { target.setAttribute("tabindex", "-1"); } target.focus(); }
    }
    function busy(on) {
      checking = on;
      form.setAttribute("aria-busy", on ? "true" : "false");
      $$(".steps button, [data-next]", form).forEach(function (b) { b.disabled = on; });
    }
    // Opens step `to`: at once when going back, after the server's check when going forward.
    function go(to) {
      if (to <= current) { show(to); return; }
      if (checking) { return; }
      busy(true);
      var body = new URLSearchParams(new FormData(form));
      body.set("step", String(to));
      var from = current;
      fetch("/backfills/check", { method: "POST", body: body, headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (r) {
          var away = r.headers.get("HX-Redirect");
          if (away) { window.location.href = away; return null; }
          return r.text();
        })
        .then(function (html) {
          if (html === null) { return; }
          var t = document.createElement("template");
          t.innerHTML = html;
          var result = t.content.querySelector(".step-check");
          if (!result) {
            stepMessage(form, from, "This step could not be checked: " + (t.content.textContent || "").trim(), []);
            return;
          }
          var marks = applyMarks(form, t.content);
          var ok = result.getAttribute("data-ok") === "true";
          var open = Number(result.getAttribute("data-open"));
          for (var i = 1; i <= 4; i += 1) { stepMessage(form, i, "", []); }
          if (!ok) {
            var summary = $(".step-summary", result);
            stepMessage(form, open, summary ? summary.textContent : "", (marks[open] || {}).loose);
          }
          show(open);
        })
        .catch(function () {
          stepMessage(form, from, "The server could not be reached to check this step; try again.", []);
        })
        .then(function () { busy(false); });
    }
    form.addEventListener("click", function (ev) {
      var t = ev.target.closest("button");
      if (!t || !form.contains(t)) { return; }
      if (t.hasAttribute("data-goto")) { go(Number(t.getAttribute("data-goto"))); }
      if (t.hasAttribute("data-next")) { go(Number(t.getAttribute("data-next"))); }
    });
    // Enter in a field of steps 1-3 moves on (after the check) instead of creating.
    form.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && current < 4 && ev.target.matches("input")) {
        ev.preventDefault();
        go(current + 1);
      }
    });
    // A preflight answer is about the filter it was given: editing the filter removes it.
    var preflight = $("#preflight", form);
    function stalePreflight(ev) {
      if (preflight && ev.target.closest("#step-2") && ev.target.id !== "preflight-button") {
        preflight.textContent = "";
      }
    }
    form.addEventListener("input", stalePreflight);
    form.addEventListener("change", stalePreflight);
    // Marks in what the preflight, the windows summary and a refused create answer.
    document.body.addEventListener("htmx:afterSwap", function (ev) {
      var target = ev.detail && ev.detail.target;
      if (!target || !form.contains(target)) { return; }
      var marks = applyMarks(form, target);
      Object.keys(marks).forEach(function (n) {
        if (!marks[n].count) { stepMessage(form, Number(n), "", []); }
      });
      if (target.id === "create-result") {
        var bad = Object.keys(marks).filter(function (n) { return marks[n].count > 0; }).map(Number);
        if (bad.length) {
          var n = Math.min.apply(null, bad);
          stepMessage(form, n, "The create was refused: fix the problem marked in this step.", marks[n].loose);
          if (n !== current) { show(n); }
        }
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
    var id = control.id || nextId("rb");
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
    var idsBox = $("#ids-editor", form);
    if (!root || !textarea) { return; }
    var limit = el("input", { type: "number", min: "1", "class": "rb-limit", id: "rb-limit", placeholder: "no limit" });
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
      jsonBox.hidden = m !== "json";
      if (idsBox) { idsBox.hidden = m !== "ids"; }
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
      renumber(day);
      return row;
    }
    // Window inputs are #<day>_start_<n> / #<day>_end_<n>, n the row's place in its day (what
    // the server's marks name), so they are renumbered when rows come and go.
    function renumber(day) {
      $$(".day[data-day=" + day + "] .window-row", form).forEach(function (row, i) {
        $("input[data-part=start]", row).id = day + "_start_" + i;
        $("input[data-part=end]", row).id = day + "_end_" + i;
      });
    }
    function mode() {
      var m = ($("input[name=windows_mode]:checked", form) || {}).value;
      editor.hidden = m !== "windows";
      if (m === "windows" && !$(".window-row", editor)) { applyPreset("weeknights"); }
      fire("windows-changed");
    }
    function applyPreset(name) {
      $$(".window-row, .rows .field-error, .rows .field-note", editor).forEach(function (r) { r.remove(); });
      var p = PRESETS[name] || {};
      Object.keys(p).forEach(function (day) { p[day].forEach(function (w) { addRow(day, w[0], w[1]); }); });
    }
    // A clone brings its source's windows (`data-prefill`, the API's JSON).
    var prefill = editor.getAttribute("data-prefill");
    if (prefill) {
      try {
        var given = JSON.parse(prefill);
        Object.keys(given).forEach(function (day) {
          (given[day] || []).forEach(function (w) { addRow(day, w.run_start_time, w.run_end_time); });
        });
      } catch (e) { /* the editor starts empty */ }
    }
    editor.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) { return; }
      if (b.hasAttribute("data-add")) { var r = addRow(b.getAttribute("data-add"), "", ""); $("input", r).focus(); }
      if (b.hasAttribute("data-remove")) {
        var gone = b.closest(".window-row");
        var day = gone.closest(".day").getAttribute("data-day");
        while (gone.nextElementSibling && gone.nextElementSibling.matches(".field-error, .field-note")) {
          gone.nextElementSibling.remove();
        }
        gone.remove();
        renumber(day);
      }
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
        if (browser && tz.value === "UTC" && !tz.hasAttribute("data-keep")) { tz.value = browser; }
      } catch (e) { /* keep UTC */ }
      tz.addEventListener("change", function () { fire("windows-changed"); });
    }
    var mif = $("#max_in_flight", form);
    if (mif) { mif.addEventListener("change", function () { fire("windows-changed"); }); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = $("#wizard");
    if (!form) { return; }
    initWizard(form);
    initBuilder(form);
    initWindows(form);
  });
})();
