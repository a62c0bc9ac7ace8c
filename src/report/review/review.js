"use strict";
// The interactive review: every person of the plan, built from the JSON data
// block with textContent only (names are data, never markup).
(function () {
  var data = JSON.parse(document.getElementById("plan-data").textContent);
  var list = document.getElementById("list");
  var rows = [];

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  data.groups.forEach(function (group) {
    var box = el("details", null, "group" + (group.exception ? " exception" : ""));
    box.dataset.kind = group.kind;
    var head = el("summary");
    var count = el("span", String(group.persons.length), "count");
    head.appendChild(count);
    head.appendChild(document.createTextNode(" × " + group.title));
    box.appendChild(head);
    var table = el("table");
    var header = el("tr");
    ["id", "username", "name", "department", "profile", "note", "actions"].forEach(function (h) {
      header.appendChild(el("th", h));
    });
    table.appendChild(header);
    var body = el("tbody");
    group.persons.forEach(function (index) {
      var p = data.persons[index];
      var row = el("tr", null, "person " + group.kind);
      row.dataset.id = p.id;
      row.dataset.kind = group.kind;
      [p.id, p.username, p.name, p.department || "—", p.profile, p.note || "—"].forEach(function (v) {
        row.appendChild(el("td", v));
      });
      var cell = el("td");
      if (p.actions.length) {
        var ul = el("ul", null, "actions");
        p.actions.forEach(function (a) { ul.appendChild(el("li", a)); });
        cell.appendChild(ul);
      } else {
        cell.textContent = "—";
      }
      row.appendChild(cell);
      body.appendChild(row);
      rows.push({
        row: row,
        group: box,
        text: [p.id, p.username, p.name, p.department || ""].join("\n").toLowerCase(),
        person: p,
        kind: group.kind
      });
    });
    table.appendChild(body);
    box.appendChild(table);
    box.count = count;
    box.total = group.persons.length;
    list.appendChild(box);
  });

  var search = document.getElementById("search");
  var filters = {
    kind: document.getElementById("f-kind"),
    target: document.getElementById("f-target"),
    profile: document.getElementById("f-profile"),
    department: document.getElementById("f-department")
  };
  var matches = document.getElementById("matches");

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var kind = filters.kind.value, target = filters.target.value;
    var profile = filters.profile.value, department = filters.department.value;
    var active = words.length > 0 || kind || target || profile || department;
    var shown = new Map();
    var total = 0;
    rows.forEach(function (r) {
      var p = r.person;
      var ok = words.every(function (w) { return r.text.indexOf(w) >= 0; }) &&
        (!kind || r.kind === kind) &&
        (!target || p.targets.indexOf(target) >= 0) &&
        (!profile || p.profile === profile) &&
        (!department || (p.department || "") === department);
      r.row.hidden = !ok;
      if (ok) {
        total += 1;
        shown.set(r.group, (shown.get(r.group) || 0) + 1);
      }
    });
    Array.prototype.forEach.call(list.children, function (box) {
      var n = shown.get(box) || 0;
      box.hidden = active && n === 0;
      box.open = Boolean(active && n > 0);
      box.count.textContent = active ? n + " of " + box.total : String(box.total);
    });
    document.body.classList.toggle("filtering", Boolean(active));
    matches.textContent = active ? total + " person(s) match" : "";
  }

  // A cleared field may only say "change" (WebDriver's clear, autofill).
  ["input", "change", "search"].forEach(function (e) { search.addEventListener(e, apply); });
  Object.keys(filters).forEach(function (k) { filters[k].addEventListener("change", apply); });

  var printAll = document.getElementById("print-all");
  printAll.addEventListener("change", function () {
    document.body.classList.toggle("print-all", printAll.checked);
    if (printAll.checked) {
      Array.prototype.forEach.call(list.children, function (box) { box.open = true; });
    }
  });
  document.body.classList.add("ready");
})();
