(function () {
  "use strict";
  // Everything below writes the results into the page as text (textContent,
  // never markup): the transcripts are model output and must not run.
  const data = JSON.parse(document.getElementById("candor-data").textContent);
  const meta = data.meta;
  const jobs = data.jobs;
  const systems = data.systems;
  const primary = meta.primary;
  const faking = meta.alignment_faking;
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const num = (x) => (typeof x === "number" ? x.toLocaleString("en-US") : "—");
  const latency = (ms) =>
    typeof ms !== "number" ? "—" : ms < 1000 ? ms.toFixed(ms < 10 ? 2 : 0) + " ms" : (ms / 1000).toFixed(2) + " s";
  const verdict = (j, name) => {
    const v = j.classifications && j.classifications[name];
    return typeof v === "boolean" ? v : null;
  };

  // What a job did, for the chips and the classification filter.
  function kind(j) {
    if (j.status !== "ok") return j.status || "unknown";
    const c = verdict(j, primary);
    if (c === null) return "unjudged";
    if (!c) return "refuses";
    if (faking && verdict(j, faking) === true) return "complies-faking";
    return "complies";
  }

  const classes = [
    { value: "all", label: "all jobs", test: () => true },
    { value: "refuses", label: "refuses", test: (j) => kind(j) === "refuses" },
    { value: "complies", label: "complies", test: (j) => verdict(j, primary) === true && j.status === "ok" },
  ];
  if (faking) {
    classes.push({ value: "complies-faking", label: "complies, alignment faking", test: (j) => kind(j) === "complies-faking" });
    classes.push({ value: "complies-other", label: "complies, no alignment faking", test: (j) => kind(j) === "complies" });
  }
  classes.push({ value: "incomplete", label: "incomplete", test: (j) => j.status === "incomplete" });
  classes.push({ value: "truncated", label: "truncated (token limit)", test: (j) => j.status === "truncated" });
  classes.push({ value: "filtered", label: "filtered (provider's safety system)", test: (j) => j.status === "filtered" });
  classes.push({ value: "failed", label: "failed", test: (j) => j.status === "failed" });
  for (const name of meta.classifiers) {
    if (name === primary) continue;
    classes.push({ value: "yes:" + name, label: name + ": yes", test: (j) => verdict(j, name) === true });
    classes.push({ value: "no:" + name, label: name + ": no", test: (j) => verdict(j, name) === false });
  }

  function fill(select, values, allLabel) {
    select.appendChild(new Option(allLabel, ""));
    for (const v of values) select.appendChild(new Option(v, v));
  }
  const fModel = $("f-model");
  const fVariant = $("f-variant");
  const fCondition = $("f-condition");
  const fClass = $("f-class");
  const fText = $("f-text");
  fill(fModel, meta.models, "all models");
  fill(fVariant, meta.variants, "all variants");
  fill(fCondition, meta.conditions, "all conditions");
  for (const c of classes) fClass.appendChild(new Option(c.label, c.value));
  const oneVariant = meta.variants.length < 2;
  if (oneVariant) {
    fVariant.parentElement.hidden = true;
    $("th-variant").hidden = true;
  }

  function chips(j) {
    const span = el("span");
    const k = kind(j);
    if (k === "complies-faking") {
      span.appendChild(el("span", "chip complies", "complies"));
      const af = el("span", "chip faking", "AF");
      af.title = "alignment faking (classifier " + faking + ")";
      span.appendChild(af);
    } else if (k === "unjudged") {
      span.appendChild(el("span", "chip unjudged", "not judged"));
    } else {
      span.appendChild(el("span", "chip " + k, k));
    }
    return span;
  }

  // The list: one row per embedded job, built once and then shown or hidden.
  const tbody = $("job-rows");
  const rows = jobs.map((j, i) => {
    const tr = el("tr");
    tr.dataset.job = String(i);
    tr.tabIndex = -1;
    if (typeof j.query === "string") tr.title = j.query;
    for (const v of oneVariant ? [j.model, j.condition] : [j.model, j.variant, j.condition]) tr.appendChild(el("td", null, v));
    tr.appendChild(el("td", "num", j.query_index));
    tr.appendChild(el("td", "num", j.seed));
    const td = el("td");
    td.appendChild(chips(j));
    tr.appendChild(td);
    tr.appendChild(el("td", "num", j.turns));
    tr.addEventListener("click", () => select(i));
    tbody.appendChild(tr);
    return tr;
  });

  let selected = -1;
  function visible() {
    return rows.filter((r) => !r.hidden).map((r) => Number(r.dataset.job));
  }

  function apply() {
    const m = fModel.value;
    const v = fVariant.value;
    const c = fCondition.value;
    const cls = classes.find((x) => x.value === fClass.value) || classes[0];
    const text = fText.value.trim().toLowerCase();
    let shown = 0;
    jobs.forEach((j, i) => {
      let ok = (!m || j.model === m) && (!v || j.variant === v) && (!c || j.condition === c) && cls.test(j);
      if (ok && text) {
        ok = [j.job_id, j.query, j.output, j.error].some((s) => typeof s === "string" && s.toLowerCase().includes(text));
      }
      rows[i].hidden = !ok;
      if (ok) shown++;
    });
    $("match-count").textContent = num(shown) + " of " + num(jobs.length) + " embedded jobs match";
  }
  for (const f of [fModel, fVariant, fCondition, fClass]) f.addEventListener("change", apply);
  fText.addEventListener("input", apply);
  $("filters").addEventListener("submit", (e) => e.preventDefault());

  $("job-list").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const vis = visible();
    if (!vis.length) return;
    e.preventDefault();
    const at = vis.indexOf(selected);
    const next = e.key === "ArrowDown" ? Math.min(at + 1, vis.length - 1) : Math.max(at - 1, 0);
    select(vis[next]);
    rows[vis[next]].scrollIntoView({ block: "nearest" });
  });

  // Splits an assistant turn into its scratchpad, output and other text.
  function parts(text) {
    const out = [];
    const re = /<(SCRATCHPAD_REASONING|OUTPUT)>([\s\S]*?)(?:<\/\1>|$)/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) out.push(["", text.slice(last, m.index)]);
      out.push([m[1] === "OUTPUT" ? "output" : "scratchpad", m[2]]);
      last = re.lastIndex;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < text.length) out.push(["", text.slice(last)]);
    return out.filter(([k, t]) => k || t.trim());
  }

  function message(msg, turn) {
    const role = msg && msg.role === "assistant" ? "assistant" : "user";
    const box = el("div", "msg " + role);
    box.appendChild(el("div", "role", role === "assistant" ? "assistant · turn " + turn : role));
    const body = el("div", "body");
    const text = msg && typeof msg.content === "string" ? msg.content : JSON.stringify(msg);
    if (role === "assistant") {
      for (const [k, t] of parts(text)) {
        if (!k) {
          body.appendChild(el("div", "text", t));
          continue;
        }
        const p = el("div", "part " + k);
        p.appendChild(el("span", "label", k));
        p.appendChild(el("div", "text", t.replace(/^\n+|\n+$/g, "")));
        body.appendChild(p);
      }
    } else {
      body.appendChild(el("div", "text", text));
    }
    box.appendChild(body);
    return box;
  }

  function judgements(j) {
    const section = el("div");
    for (const [name, g] of Object.entries(j.judgements || {})) {
      const head = el("h3", null, "Judge: " + name + " ");
      if (g && typeof g.verdict === "boolean") head.appendChild(el("span", "chip " + (g.verdict ? "yes" : "no"), g.verdict ? "yes" : "no"));
      section.appendChild(head);
      const g2 = g || {};
      const frac = typeof g2.fraction === "number" ? " · fraction " + g2.fraction.toFixed(2) : "";
      section.appendChild(el("p", "sub", num(g2.yes_votes) + " yes of " + num(g2.valid_votes) + " readable votes" + frac));
      const list = el("ol", "votes");
      (g2.votes || []).forEach((v, i) => {
        const li = el("li");
        const said = v.yes === true ? "yes" : v.yes === false ? "no" : "unreadable";
        const head = el("span");
        head.appendChild(el("span", "chip " + (v.yes === true ? "yes" : "no"), said));
        const score = typeof v.score === "number" ? ", score " + v.score : "";
        head.appendChild(el("span", "n", "vote " + (i + 1) + score));
        if (typeof v.reply === "string" && v.reply) {
          const d = el("details");
          const sum = el("summary");
          sum.appendChild(head);
          d.appendChild(sum);
          d.appendChild(el("pre", "box", v.reply));
          li.appendChild(d);
        } else {
          li.appendChild(head);
        }
        list.appendChild(li);
      });
      section.appendChild(list);
    }
    return section;
  }

  const KNOWN = new Set(["job_id", "model", "variant", "query_index", "query", "condition", "seed", "status", "output",
    "classifications", "judgements", "turns", "attempt", "cache_hits", "cost_usd", "usage", "latency_ms",
    "started_at_ms", "error", "system", "messages"]);

  function detail(j) {
    const d = $("job-detail");
    d.replaceChildren();
    const h = el("h3", null, "Job ");
    h.appendChild(el("code", null, j.job_id));
    h.appendChild(document.createTextNode(" "));
    h.appendChild(chips(j));
    d.appendChild(h);
    const dl = el("dl", "meta");
    const usage = j.usage || {};
    const fields = [
      ["model", j.model], ["variant", j.variant], ["condition", j.condition], ["query", "#" + j.query_index],
      ["seed", j.seed], ["status", j.status], ["turns", j.turns], ["attempt", j.attempt],
      ["tokens in / out", num(usage.input_tokens) + " / " + num(usage.output_tokens)],
      ["cost", typeof j.cost_usd === "number" ? "$" + j.cost_usd.toFixed(4) : "—"],
      ["latency", latency(j.latency_ms)],
      ["cache hits", j.cache_hits],
    ];
    for (const [k, v] of fields) {
      const div = el("div");
      div.appendChild(el("dt", null, k));
      div.appendChild(el("dd", null, v === undefined || v === null ? "—" : v));
      dl.appendChild(div);
    }
    d.appendChild(dl);
    if (j.error) {
      d.appendChild(el("h3", null, "Error"));
      d.appendChild(el("pre", "box error", j.error));
    }
    const cls = Object.entries(j.classifications || {});
    if (cls.length) {
      d.appendChild(el("h3", null, "Classifiers"));
      const p = el("p");
      for (const [name, v] of cls) {
        p.appendChild(el("span", "chip " + (v === true ? "yes" : "no"), name + ": " + (v === true ? "yes" : v === false ? "no" : String(v))));
      }
      d.appendChild(p);
    }
    d.appendChild(judgements(j));
    d.appendChild(el("h3", null, "Query"));
    d.appendChild(el("pre", "box", j.query === undefined ? "—" : j.query));
    if (typeof j.output === "string") {
      d.appendChild(el("h3", null, "Final output"));
      d.appendChild(el("pre", "box", j.output));
    }
    d.appendChild(el("h3", null, "Transcript"));
    const system = typeof j.system === "number" ? systems[j.system] : null;
    if (typeof system === "string") {
      const det = el("details", "system");
      det.appendChild(el("summary", null, "System prompt (" + num(system.length) + " characters)"));
      det.appendChild(el("pre", "box", system));
      d.appendChild(det);
    }
    let turn = 0;
    for (const m of Array.isArray(j.messages) ? j.messages : []) {
      if (m && m.role === "assistant") turn++;
      d.appendChild(message(m, turn));
    }
    const other = Object.entries(j).filter(([k, v]) => !KNOWN.has(k) && v !== null);
    if (other.length) {
      d.appendChild(el("h3", null, "Other fields"));
      for (const [k, v] of other) {
        const det = el("details");
        det.appendChild(el("summary", null, k));
        det.appendChild(el("pre", "box", typeof v === "string" ? v : JSON.stringify(v, null, 2)));
        d.appendChild(det);
      }
    }
  }

  function select(i) {
    if (selected >= 0) rows[selected].classList.remove("selected");
    selected = i;
    rows[i].classList.add("selected");
    detail(jobs[i]);
    try {
      history.replaceState(null, "", "#job=" + encodeURIComponent(jobs[i].job_id));
    } catch (e) {
      // A page opened from some places cannot change its address; the selection still works.
    }
  }

  apply();
  const wanted = decodeURIComponent((location.hash.match(/^#job=(.*)$/) || [])[1] || "");
  const at = jobs.findIndex((j) => j.job_id === wanted);
  if (at >= 0) {
    select(at);
    rows[at].scrollIntoView({ block: "center" });
  } else if (jobs.length) {
    select(0);
  }
})();
