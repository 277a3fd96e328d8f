// Sorts the host table by the clicked column; #sort=KEY,asc|desc in the
// address sorts on load. The page reads the same without it.
(function () {
  "use strict";
  var table = document.getElementById("hosts");
  if (!table || !table.tHead || !table.tBodies.length) {
    return;
  }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function value(row, i, num) {
    var cell = row.cells[i];
    if (!cell) {
      return num ? 0 : "";
    }
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim().toLowerCase();
    return num ? Number(v) : v;
  }
  function sortBy(i, dir) {
    var num = heads[i].getAttribute("data-type") === "num";
    var sign = dir === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.hasAttribute("data-i"); });
    rows.sort(function (a, b) {
      var x = value(a, i, num), y = value(b, i, num);
      var c = num ? x - y : (x < y ? -1 : x > y ? 1 : 0);
      if (c !== 0) {
        return sign * c;
      }
      return Number(a.getAttribute("data-i")) - Number(b.getAttribute("data-i"));
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) {
      if (j === i) {
        heads[j].setAttribute("aria-sort", dir);
      } else {
        heads[j].removeAttribute("aria-sort");
      }
    }
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    var button = th.querySelector("button");
    if (!button) {
      return;
    }
    button.addEventListener("click", function () {
      var cur = th.getAttribute("aria-sort");
      var dir = cur ? (cur === "ascending" ? "descending" : "ascending")
        : (th.getAttribute("data-type") === "num" ? "descending" : "ascending");
      sortBy(i, dir);
      try {
        history.replaceState(null, "", "#sort=" + th.getAttribute("data-key") + "," + (dir === "ascending" ? "asc" : "desc"));
      } catch (e) {
        // Not allowed for this document: sorting still works.
      }
    });
  });
  var m = /^#sort=([a-z]+)(?:,(asc|desc))?$/.exec(location.hash);
  if (m) {
    for (var k = 0; k < heads.length; k++) {
      if (heads[k].getAttribute("data-key") === m[1]) {
        sortBy(k, m[2] === "desc" ? "descending" : "ascending");
      }
    }
  }
  document.documentElement.setAttribute("data-js", "ready");
}());
