// candor's live view: fills the list and sweep pages from /view/api once a
// second. What it fetches is written into the page as text only
// (textContent, attributes), never parsed as HTML.
(function () {
  "use strict";

  function byId(id) {
    return document.getElementById(id);
  }

  // Sets an element's text only when it changed.
  function text(el, s) {
    s = s === undefined || s === null ? "–" : String(s);
    if (el.textContent !== s) {
      el.textContent = s;
    }
  }

  function cost(x) {
    return typeof x === "number" ? "$" + x.toFixed(4) : "–";
  }

  function when(s) {
    return s ? s.replace("T", " ").replace("Z", " UTC") : "–";
  }

  function bar(p, done, total) {
    p.max = Math.max(total, 1);
    p.value = Math.min(done, p.max);
  }

  // A row of `n` cells, the first `nums` from the right aligned as numbers.
  function newRow(n, nums) {
    var tr = document.createElement("tr");
    for (var i = 0; i < n; i++) {
      var td = document.createElement("td");
      if (i >= n - nums) {
        td.className = "num";
      }
      tr.appendChild(td);
    }
    return tr;
  }

  // Puts `tr` at position `i` of `tbody` unless it is there already.
  function place(tbody, tr, i) {
    var at = tbody.children[i];
    if (at !== tr) {
      tbody.insertBefore(tr, at || null);
    }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 401) {
        // Logged out (or the token changed): the page asks again.
        window.location.assign(window.location.pathname);
        throw new Error("not logged in");
      }
      return r.json().then(function (body) {
        if (!r.ok) {
          throw new Error(body && body.error ? body.error : "HTTP " + r.status);
        }
        return body;
      });
    });
  }

  function updated(extra) {
    text(byId("status"), "updated " + new Date().toLocaleTimeString() + (extra || ""));
  }

  function failed(e) {
    text(byId("status"), "cannot update: " + e.message);
  }

  function listPage() {
    var tbody = document.querySelector("#sweeps tbody");
    var rows = {};

    function row(s) {
      var tr = rows[s.id];
      if (!tr) {
        tr = newRow(9, 3);
        tr.setAttribute("data-id", s.id);
        var a = document.createElement("a");
        a.className = "open";
        a.href = "/view/sweeps/" + encodeURIComponent(s.id);
        tr.cells[0].appendChild(a);
        var code = document.createElement("code");
        tr.cells[1].appendChild(code);
        tr.cells[5].appendChild(document.createElement("progress"));
        rows[s.id] = tr;
      }
      var c = tr.cells;
      text(c[0].firstChild, s.name);
      if (s.dir) {
        c[0].firstChild.title = s.dir;
      }
      text(c[1].firstChild, s.id);
      text(c[2], s.state);
      c[2].setAttribute("data-state", s.state);
      text(c[3], s.run_label);
      text(c[4], when(s.created));
      bar(c[5].firstChild, s.jobs_done, s.jobs_total);
      text(c[6], s.jobs_done + " / " + s.jobs_total);
      text(c[7], s.jobs_failed);
      text(c[8], cost(s.cost_usd));
      return tr;
    }

    function tick() {
      getJson("/view/api/sweeps")
        .then(function (d) {
          var seen = {};
          d.sweeps.forEach(function (s, i) {
            seen[s.id] = true;
            place(tbody, row(s), i);
          });
          Object.keys(rows).forEach(function (id) {
            if (!seen[id]) {
              rows[id].remove();
              delete rows[id];
            }
          });
          byId("empty").hidden = d.sweeps.length > 0;
          updated(d.truncated ? " (the first 1000 sweeps)" : "");
        })
        .catch(failed)
        .then(function () {
          window.setTimeout(tick, 1000);
        });
    }
    tick();
  }

  function sweepPage() {
    var id = document.body.getAttribute("data-id");
    var tbody = document.querySelector("#cells tbody");
    var frame = byId("report-frame");
    var note = byId("report-note");
    var rows = {};
    var shown = { at: 0, done: -1, state: "" };

    function cellRow(c) {
      var key = c.model + "\u0000" + c.condition;
      var tr = rows[key];
      if (!tr) {
        tr = newRow(6, 3);
        tr.cells[2].appendChild(document.createElement("progress"));
        rows[key] = tr;
      }
      text(tr.cells[0], c.model);
      text(tr.cells[1], c.condition);
      bar(tr.cells[2].firstChild, c.done, c.total);
      text(tr.cells[3], c.done);
      text(tr.cells[4], c.total);
      text(tr.cells[5], c.failed);
      tr.cells[5].setAttribute("data-failed", c.failed > 0 ? "yes" : "no");
      return tr;
    }

    function failures(list) {
      var section = byId("failures");
      var ul = section.querySelector("ul");
      section.hidden = list.length === 0;
      var items = list.map(function (f) {
        var li = document.createElement("li");
        li.textContent = f.model + " · " + (f.kind || "failed") + " · " + f.jobs + " jobs: " + f.first_error;
        return li;
      });
      ul.replaceChildren.apply(ul, items);
    }

    // The report page in its frame: loaded once there is one, again when
    // the sweep's state changes, and every 5 s while results come in.
    function report(s) {
      if (!s.report) {
        frame.hidden = true;
        text(note, s.state === "running"
          ? "The report appears here when the run ends (a local run writes it at its end)."
          : "No report for this sweep yet.");
        return;
      }
      var now = Date.now();
      var due = shown.done < 0 || s.state !== shown.state ||
        (s.jobs_done !== shown.done && now - shown.at >= 5000);
      if (!due) {
        return;
      }
      shown = { at: now, done: s.jobs_done, state: s.state };
      frame.src = "/view/sweeps/" + encodeURIComponent(id) + "/report?at=" + now;
      frame.hidden = false;
      text(note, s.state === "running"
        ? "The report of the results so far, rebuilt every few seconds while the sweep runs (transcripts once it ends)."
        : "The sweep's report, as report.html shows it.");
    }

    function tick() {
      getJson("/view/api/sweeps/" + encodeURIComponent(id))
        .then(function (s) {
          text(byId("name"), s.name);
          document.title = "candor · " + s.name;
          text(byId("state"), s.state);
          byId("state").setAttribute("data-state", s.state);
          text(byId("label"), s.run_label);
          text(byId("created"), when(s.created));
          text(byId("done"), s.jobs_done);
          text(byId("total"), s.jobs_total);
          bar(byId("bar"), s.jobs_done, s.jobs_total);
          text(byId("in-flight"), s.jobs_in_flight);
          text(byId("failed"), s.jobs_failed);
          text(byId("cost"), cost(s.cost_usd));
          var reason = byId("reason");
          reason.hidden = !s.reason;
          text(reason, s.reason);
          s.cells.forEach(function (c, i) {
            place(tbody, cellRow(c), i);
          });
          failures(s.failures);
          report(s);
          updated("");
          return s.state;
        })
        .catch(failed)
        .then(function (state) {
          window.setTimeout(tick, state === "running" ? 1000 : 3000);
        });
    }
    tick();
  }

  var page = document.body.getAttribute("data-page");
  if (page === "list") {
    listPage();
  } else if (page === "sweep") {
    sweepPage();
  }
})();
