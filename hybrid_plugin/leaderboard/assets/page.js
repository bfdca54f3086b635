(function () {
  "use strict";
  function dataRows(table) { return Array.prototype.slice.call(table.tBodies[0].querySelectorAll("tr.row")); }
  function detailOf(row) { return document.getElementById(row.getAttribute("data-detail")); }
  function heads(table) { return Array.prototype.slice.call(table.tHead.rows[0].cells); }
  function value(row, col, numeric) {
    var raw = row.cells[col].getAttribute("data-value");
    if (!numeric) { return raw; }
    return raw === "" ? null : Number(raw);
  }
  // ascending: true or false; left out, a click's: ascending unless it already is
  function sortBy(table, th, ascending) {
    var col = heads(table).indexOf(th);
    var numeric = th.getAttribute("data-type") === "number";
    if (ascending === undefined) { ascending = th.getAttribute("aria-sort") !== "ascending"; }
    heads(table).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = dataRows(table);
    rows.sort(function (a, b) {
      var x = value(a, col, numeric), y = value(b, col, numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }  // empty cells last
      var c = numeric ? x - y : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); body.appendChild(detailOf(r)); });
  }
  // the text a row shows: its cells that are displayed (not the hidden columns, not the details)
  function shownText(row) {
    return Array.prototype.map.call(row.cells, function (cell) {
      return getComputedStyle(cell).display === "none" ? "" : cell.textContent;
    }).join(" ");
  }
  function currentSection() { return document.querySelector("section.task:not([hidden])"); }
  function applyFilter() {
    var query = document.getElementById("filter").value.trim().toLowerCase();
    var shown = 0, total = 0;
    var section = currentSection();
    if (!section) { return; }
    section.querySelectorAll("table.board").forEach(function (table) {
      dataRows(table).forEach(function (row) {
        var match = query === "" || shownText(row).toLowerCase().indexOf(query) !== -1;
        row.hidden = !match;
        if (!match) { setOpen(row, false); }
        total += 1; shown += match ? 1 : 0;
      });
    });
    var count = query === "" ? total + " rows" : shown + " of " + total + " rows";
    document.getElementById("count").textContent = count;
  }
  function setOpen(row, open) {
    var button = row.querySelector("button.more");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "▾" : "▸";
    detailOf(row).hidden = !open;
  }
  function tabs() { return Array.prototype.slice.call(document.querySelectorAll(".tabs button")); }
  function selectTask(task) {
    tabs().forEach(function (tab) {
      var on = tab.getAttribute("data-task") === task;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    });
    applyFilter();
  }
  // the address: #TASK&sort=KEY.asc (main table)&partial=KEY.desc (partial-language table)
  function writeHash() {
    var section = currentSection();
    if (!section) { return; }
    var parts = [section.id];
    section.querySelectorAll("table.board").forEach(function (table) {
      var th = table.querySelector("thead th[aria-sort]");
      if (th) {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "asc" : "desc";
        parts.push(table.getAttribute("data-param") + "=" + th.getAttribute("data-key") + "." + dir);
      }
    });
    var hash = "#" + parts.join("&");
    if (location.hash === hash) { return; }
    try { history.replaceState(null, "", hash); } catch (err) { location.hash = hash; }
  }
  function restore() {
    var task = null, sorts = {};
    location.hash.slice(1).split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq === -1) { task = part; } else { sorts[part.slice(0, eq)] = part.slice(eq + 1); }
    });
    var all = tabs();
    if (!all.length) { return; }
    var tab = all.filter(function (t) { return t.getAttribute("data-task") === task; })[0] || all[0];
    document.getElementById(tab.getAttribute("aria-controls")).querySelectorAll("table.board")
      .forEach(function (table) {
        var wanted = sorts[table.getAttribute("data-param")];
        if (!wanted) { return; }
        var dot = wanted.lastIndexOf(".");
        var key = wanted.slice(0, dot), dir = wanted.slice(dot + 1);
        var th = heads(table).filter(function (h) { return h.getAttribute("data-key") === key; })[0];
        if (th && (dir === "asc" || dir === "desc")) { sortBy(table, th, dir === "asc"); }
      });
    selectTask(tab.getAttribute("data-task"));
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    heads(table).forEach(function (th) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, th); writeHash(); }); }
    });
    dataRows(table).forEach(function (row) {
      row.querySelector("button.more").addEventListener("click", function () {
        setOpen(row, detailOf(row).hidden);
      });
    });
  });
  tabs().forEach(function (tab) {
    tab.addEventListener("click", function () { selectTask(tab.getAttribute("data-task")); writeHash(); });
  });
  document.getElementById("filter").addEventListener("input", applyFilter);
  document.getElementById("langs").addEventListener("change", function (event) {
    document.body.classList.toggle("show-langs", event.target.checked);
    applyFilter();  // the columns shown changed, so did the text the filter looks at
  });
  window.matchMedia("(max-width: NARROW)").addEventListener("change", applyFilter);
  window.addEventListener("hashchange", restore);
  restore();
})();
