// neo-backfill dashboard: the new-backfill wizard (steps, rule builder, windows editor,
// shadow-run choice).
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
  // The fields come from the page (#rule-vocabulary, rendered from the PSA's compile tables):
  // per entity type, the aliases that mean something on it and its native fields with their
  // kinds. Picking a workflow picks its entity type's fields; a type the tenant's PSA cannot
  // filter takes an id list only. Without an integration the builder offers the ticket aliases.
  var ALIAS_LABELS = {
    "$id": "Id", "$created": "Created", "$updated": "Updated", "$closed": "Closed",
    "$company": "Company", "$status": "Status", "$priority": "Priority", "$queue": "Queue / board",
    "$assignee": "Assignee"
  };
  var ALIAS_KINDS = {
    "$id": "number", "$created": "datetime", "$updated": "datetime", "$closed": "bool",
    "$company": "name_or_id", "$status": "name_or_id", "$priority": "name_or_id",
    "$queue": "name_or_id", "$assignee": "name_or_id"
  };
  var TICKET_ALIASES = Object.keys(ALIAS_LABELS);
  // The field select's two free-text choices (no alias or path starts with a colon).
  var OTHER = ":native";
  var CUSTOM = ":custom";
  var HINTS = {
    datetime: "a date, 2026-04-01, or an age, P30D (30 days ago)",
    bool: "true or false",
    number: "a number; lists: 1, 2",
    string: "text; lists: a, b",
    name_or_id: "a name or an id; lists: a, b",
    any: "value; lists: a, b; dates: 2026-04-01 or P30D",
    custom: "value; lists: a, b"
  };
  var OPERATORS = [
    ["=", "="], ["!=", "≠"], ["<", "<"], ["<=", "≤"], [">", ">"], [">=", "≥"],
    ["in", "in list"], ["notIn", "not in list"], ["between", "between"],
    ["contains", "contains"], ["doesNotContain", "does not contain"], ["beginsWith", "begins with"],
    ["endsWith", "ends with"], ["null", "is empty"], ["notNull", "is not empty"]
  ];
  var MAX_DEPTH = 4;

  function readVocabulary() {
    var block = document.getElementById("rule-vocabulary");
    try { return block ? JSON.parse(block.textContent) : {}; } catch (e) { return {}; }
  }

  // What the builder offers for `entity` (null: no workflow picked yet, tickets).
  function fieldsFor(vocab, entity) {
    var e = vocab.psa && vocab.entities ? vocab.entities[entity || "ticket"] : null;
    if (!e) { return { entity: entity, aliases: TICKET_ALIASES, native: [], filters: true, label: "", note: "", caseless: false }; }
    return {
      entity: entity, aliases: e.aliases.length ? e.aliases : ["$id"], native: e.fields,
      filters: e.filters, label: vocab.psa_label, note: e.note, caseless: vocab.psa === "autotask"
    };
  }

  // The kind of a native field of the catalogue, or null when it has no such field.
  function nativeKind(F, path) {
    for (var i = 0; i < F.native.length; i += 1) {
      var p = F.native[i][0];
      if (p === path || (F.caseless && p.toLowerCase() === String(path).toLowerCase())) { return F.native[i][1]; }
    }
    return null;
  }

  function kindOf(F, choice, path) {
    if (choice === CUSTOM) { return "custom"; }
    if (choice === OTHER) { return nativeKind(F, path) || "any"; }
    if (choice.charAt(0) === "$") { return ALIAS_KINDS[choice] || "any"; }
    return nativeKind(F, choice) || "any";
  }

  // A rule valid for the entity: `$closed = false` where it applies, else recently updated,
  // else every record.
  function defaultRule(F) {
    if (F.aliases.indexOf("$closed") >= 0) { return { field: "$closed", operator: "=", value: false }; }
    if (F.aliases.indexOf("$updated") >= 0) { return { field: "$updated", operator: ">=", value: { "$ago": "P30D" } }; }
    return { field: "$id", operator: "notNull" };
  }

  function firstOf(F, wanted) {
    for (var i = 0; i < wanted.length; i += 1) { if (F.aliases.indexOf(wanted[i]) >= 0) { return wanted[i]; } }
    return F.aliases[F.aliases.length - 1];
  }

  function scalar(text, kind) {
    var s = text.trim();
    if (kind === "string") { return s; }
    if (/^P(\d+[YMWD])+(T(\d+[HMS])+)?$|^PT(\d+[HMS])+$/.test(s)) { return { "$ago": s }; }
    if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s)) {
      return { "$datetime": s.length === 10 ? s + "T00:00:00Z" : s };
    }
    if (s === "true" || s === "false") { return s === "true"; }
    if (/^-?\d+(\.\d+)?$/.test(s) && kind !== "custom") { return Number(s); }
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

  // The Field select: the entity's aliases, its native fields (value: the path), then the
  // two free-text choices. An alias the entity lacks, read from pasted JSON, stays (marked)
  // so that nothing typed is lost; the step's check says why it is refused.
  function fieldSelect(F, choice) {
    var s = el("select", { "class": "rb-field" });
    function add(parent, value, text) {
      var o = el("option", { value: value, text: text });
      if (value === choice) { o.selected = true; }
      parent.appendChild(o);
    }
    F.aliases.forEach(function (a) { add(s, a, ALIAS_LABELS[a] || a); });
    if (choice.charAt(0) === "$" && F.aliases.indexOf(choice) < 0) {
      add(s, choice, (ALIAS_LABELS[choice] || choice) + " (means nothing here)");
    }
    if (F.native.length) {
      var g = el("optgroup", { label: F.label + " fields" });
      F.native.forEach(function (f) { add(g, f[0], f[0]); });
      s.appendChild(g);
    }
    add(s, OTHER, F.native.length ? "Other native field…" : "Native PSA field…");
    add(s, CUSTOM, "Custom field…");
    return s;
  }

  function choiceOf(F, rule) {
    if (rule.custom_field !== undefined) { return CUSTOM; }
    var f = rule.field;
    if (!f) { return firstOf(F, ["$status"]); }
    if (f.charAt(0) === "$") { return f; }
    for (var i = 0; i < F.native.length; i += 1) {
      var p = F.native[i][0];
      if (p === f || (F.caseless && p.toLowerCase() === f.toLowerCase())) { return p; }
    }
    return OTHER;
  }

  function labelled(text, control) {
    var id = control.id || nextId("rb");
    control.id = id;
    var l = el("label", { "for": id, text: text });
    l.appendChild(control);
    return l;
  }

  function ruleNode(F, rule) {
    var choice = choiceOf(F, rule);
    var field = fieldSelect(F, choice);
    var path = el("input", { "class": "rb-path", placeholder: "e.g. board/name", value: rule.custom_field || (choice === OTHER ? rule.field : "") || "" });
    var op = selectOf(OPERATORS, rule.operator || "=", "rb-op");
    var value = el("input", { "class": "rb-value" });
    var v = rule.value;
    value.value = Array.isArray(v) ? v.map(unscalar).join(", ") : unscalar(v);
    var remove = el("button", { type: "button", "class": "small-button rb-remove", text: "Remove rule" });
    var pathLabel = labelled("Field path / name", path);
    var valueLabel = labelled("Value", value);
    function sync() {
      pathLabel.hidden = field.value !== OTHER && field.value !== CUSTOM;
      valueLabel.hidden = op.value === "null" || op.value === "notNull";
      var kind = kindOf(F, field.value, path.value.trim());
      value.placeholder = HINTS[kind] || HINTS.any;
      value.setAttribute("data-kind", kind);
    }
    field.addEventListener("change", sync);
    path.addEventListener("input", sync);
    op.addEventListener("change", sync);
    var n = el("div", { "class": "rule" }, [labelled("Field", field), pathLabel, labelled("Operator", op), valueLabel, remove]);
    sync();
    return n;
  }

  function groupNode(F, group, depth) {
    var comb = selectOf([["and", "all of (and)"], ["or", "any of (or)"]], (group.combinator || "and").toLowerCase(), "rb-comb");
    var rules = el("div", { "class": "rules" });
    var addRule = el("button", { type: "button", "class": "small-button rb-add-rule", text: "Add rule" });
    var addGroup = el("button", { type: "button", "class": "small-button rb-add-group", text: "Add group" });
    if (depth >= MAX_DEPTH) { addGroup.disabled = true; addGroup.title = "Groups nest at most 4 deep"; }
    var head = el("div", { "class": "group-head" }, [labelled("Match", comb), addRule, addGroup]);
    if (depth > 1) { head.appendChild(el("button", { type: "button", "class": "small-button rb-remove-group", text: "Remove group" })); }
    var g = el("div", { "class": "group", "data-depth": String(depth) }, [head, rules]);
    (group.rules || []).forEach(function (r) {
      rules.appendChild(r.rules ? groupNode(F, r, depth + 1) : ruleNode(F, r));
    });
    return g;
  }

  // The group as the API takes it; with `typed`, each rule also says whether its path was
  // typed ("Other native field…"), which a change of entity keeps.
  function readGroup(F, g, typed) {
    var out = { combinator: $(".rb-comb", g).value, rules: [] };
    Array.prototype.forEach.call($(".rules", g).children, function (c) {
      if (c.classList.contains("group")) { out.rules.push(readGroup(F, c, typed)); return; }
      var choice = $(".rb-field", c).value;
      var op = $(".rb-op", c).value;
      var rule = {};
      var path = $(".rb-path", c).value.trim();
      if (choice === CUSTOM) { rule.custom_field = path; }
      else { rule.field = choice === OTHER ? path : choice; }
      if (typed && (choice === OTHER || choice === CUSTOM)) { rule.typed = true; }
      rule.operator = op;
      var kind = kindOf(F, choice, path);
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

  // The rules of `group` whose field the entity `F` still has (typed paths and custom fields
  // stay); groups left empty go.
  function prune(F, group) {
    var rules = [];
    (group.rules || []).forEach(function (r) {
      if (r.rules) {
        var g = prune(F, r);
        if (g.rules.length) { rules.push(g); }
        return;
      }
      var keep = r.typed || r.custom_field !== undefined ||
        (r.field.charAt(0) === "$" ? F.aliases.indexOf(r.field) >= 0 : choiceOf(F, r) !== OTHER);
      if (keep) { delete r.typed; rules.push(r); }
    });
    return { combinator: group.combinator, rules: rules };
  }

  function initBuilder(form) {
    var root = $("#builder", form);
    var textarea = $("#filter_spec", form);
    var jsonBox = $("#json-editor", form);
    var idsBox = $("#ids-editor", form);
    if (!root || !textarea) { return; }
    var vocab = readVocabulary();
    var note = $("#builder-note", form);
    var builderTab = $("input[name=filter_mode][value=builder]", form);
    var idsTab = $("input[name=filter_mode][value=ids]", form);
    function pickedEntity() {
      var w = $("input[name=workflow]:checked", form);
      return w ? w.getAttribute("data-entity") : null;
    }
    var F = fieldsFor(vocab, pickedEntity());
    var limit = el("input", { type: "number", min: "1", "class": "rb-limit", id: "rb-limit", placeholder: "no limit" });
    var top;
    // The fields `top` was built with.
    var builtWith = F;
    // The JSON the builder last wrote: while the textarea holds it, the builder owns the
    // filter and follows the workflow; JSON typed by hand is left alone.
    var written = null;
    // Whether the rules were edited (untouched ones are the entity's default rule).
    var touched = false;
    // The tab an ids-only workflow moved away from, given back when a filterable one is
    // picked (unless a tab was chosen since).
    var forcedFrom = null;
    function write() {
      var spec = { conditions: readGroup(builtWith, top, false) };
      if (limit.value) { spec.limit = Number(limit.value); }
      textarea.value = JSON.stringify(spec, null, 2);
      written = textarea.value;
    }
    function build(spec) {
      root.textContent = "";
      var cond = spec && spec.conditions && spec.conditions.rules && spec.conditions.rules.length
        ? spec.conditions : { combinator: "and", rules: [defaultRule(F)] };
      top = groupNode(F, cond, 1);
      builtWith = F;
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
        // Rules typed as JSON are the user's: a change of workflow prunes them, not resets.
        if (spec && spec.conditions && textarea.value !== written) { touched = true; }
        build(spec && spec.conditions ? spec : null);
        write();
      }
    }
    // An id list in the JSON (a clone's filter) moves to the Id list tab rather than be lost.
    function carryIds() {
      var box = $("#entity_ids_text", form);
      if (!box || box.value.trim()) { return; }
      try {
        var spec = JSON.parse(textarea.value);
        if (spec && Array.isArray(spec.entity_ids)) { box.value = spec.entity_ids.join("\n"); }
      } catch (e) { /* nothing to carry */ }
    }
    // The picked workflow's entity type decides the fields, the default rule, and whether a
    // rule group can target it at all.
    function follow() {
      F = fieldsFor(vocab, pickedEntity());
      if (!F.filters) {
        var what = (F.entity || "").replace(/_/g, " ");
        note.textContent = "Filters on " + what + " cannot run on " + F.label +
          (F.note ? " (" + F.note + ")" : "") + ": give the ids of the " + what + " records to run over.";
        note.hidden = false;
        builderTab.disabled = true;
        var from = $("input[name=filter_mode]:checked", form);
        if (idsTab && !idsTab.checked) {
          forcedFrom = from;
          carryIds();
          idsTab.checked = true;
          mode();
        }
        return;
      }
      note.hidden = true;
      note.textContent = "";
      builderTab.disabled = false;
      if (top && textarea.value === written) {
        var spec = null;
        if (touched) {
          spec = { conditions: prune(F, readGroup(builtWith, top, true)) };
          if (limit.value) { spec.limit = Number(limit.value); }
        }
        build(spec);
        write();
      }
      if (forcedFrom && idsTab.checked) { forcedFrom.checked = true; forcedFrom = null; mode(); }
    }
    root.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) { return; }
      var g = b.closest(".group");
      var field = firstOf(F, ["$status", "$company", "$updated"]);
      if (b.classList.contains("rb-add-rule")) { $(".rules", g).appendChild(ruleNode(F, { field: field, operator: "=", value: "" })); }
      if (b.classList.contains("rb-add-group")) {
        var inner = firstOf(F, ["$priority", "$status", "$company", "$updated"]);
        $(".rules", g).appendChild(groupNode(F, { combinator: "or", rules: [{ field: inner, operator: "=", value: "" }] }, Number(g.getAttribute("data-depth")) + 1));
      }
      if (b.classList.contains("rb-remove")) { b.closest(".rule").remove(); }
      if (b.classList.contains("rb-remove-group")) { g.remove(); }
      touched = true;
      write();
    });
    function edited() { touched = true; write(); }
    root.addEventListener("input", edited);
    root.addEventListener("change", edited);
    $$("input[name=filter_mode]", form).forEach(function (r) {
      r.addEventListener("change", function () { forcedFrom = null; mode(); });
    });
    $$("input[name=workflow]", form).forEach(function (r) {
      r.addEventListener("change", function () {
        follow();
        var pf = $("#preflight", form);
        if (pf) { pf.textContent = ""; }
      });
    });
    mode();
    follow();
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

  // ---- shadow run --------------------------------------------------------------------------
  // Only a psa_actions workflow can preview its changes: the choice is offered for those alone
  // (the radio's data-executor), and dropped when another workflow is picked.
  function initMode(form) {
    var box = $("#mode-choice", form);
    var shadow = $("#shadow", form);
    if (!box || !shadow) { return; }
    function sync() {
      var picked = $("input[name=workflow]:checked", form);
      var offer = !!picked && picked.getAttribute("data-executor") === "psa_actions";
      box.hidden = !offer;
      if (!offer && shadow.checked) { shadow.checked = false; fire("review"); }
    }
    $$("input[name=workflow]", form).forEach(function (r) { r.addEventListener("change", sync); });
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = $("#wizard");
    if (!form) { return; }
    initWizard(form);
    initBuilder(form);
    initWindows(form);
    initMode(form);
  });
})();
