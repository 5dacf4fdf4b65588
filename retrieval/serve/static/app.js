// The search page of `retrieval serve`. Every piece of text from the server is put into
// the page with textContent / createTextNode, never as HTML, so a document's markup
// (a <script> in it, for instance) is shown as text and never runs.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { index: null, q: "", offset: 0, perPage: 10, lastResultsFocus: null };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  // text with [start, end) code-point ranges wrapped in <mark>
  function marked(text, matches) {
    const chars = Array.from(text);
    const frag = document.createDocumentFragment();
    let pos = 0;
    for (const [s, e] of matches || []) {
      if (s < pos) continue;
      if (s > pos) frag.append(document.createTextNode(chars.slice(pos, s).join("")));
      frag.append(el("mark", { text: chars.slice(s, e).join("") }));
      pos = e;
    }
    if (pos < chars.length) frag.append(document.createTextNode(chars.slice(pos).join("")));
    return frag;
  }

  function settings() {
    const p = { model: $("model").value };
    for (const name of ["mu", "lam", "delta", "omega", "mu_scale"]) {
      const label = document.querySelector(`[data-param="${name}"]`);
      const v = $(name).value.trim();
      if (v && !label.hidden) p[name] = v;
    }
    p.feedback = $("feedback").value;
    return p;
  }

  const MODEL_PARAMS = { dirichlet: ["mu"], jm: ["lam"], ad: ["delta"], "two-stage": ["mu", "lam"],
                         spud: ["omega"], "dir+": ["mu", "delta"], "dirichlet-avgdl": ["mu_scale"] };
  function showModelParams() {
    const takes = MODEL_PARAMS[$("model").value] || [];
    for (const label of document.querySelectorAll("[data-param]")) {
      label.hidden = !takes.includes(label.dataset.param);
    }
  }

  async function call(path, params) {
    const url = `/api/${encodeURIComponent(state.index)}/${path}?` + new URLSearchParams(params);
    const resp = await fetch(url, { headers: { Accept: "application/json" } });
    const data = await resp.json().catch(() => ({ error: { message: resp.statusText } }));
    if (!resp.ok) throw new Error(data.error ? data.error.message : resp.statusText);
    return data;
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  async function search(offset) {
    state.q = $("q").value;
    if (!state.q.trim()) return;
    const per = parseInt($("per-page").value, 10);
    state.perPage = per > 0 ? per : 10;
    state.offset = Math.max(0, offset || 0);
    closeDocument(false);
    setStatus("Searching…");
    const params = { q: state.q, k: state.perPage, offset: state.offset, ...settings() };
    try {
      const data = await call("search", params);
      render(data);
      history.replaceState(null, "", "#" + new URLSearchParams({ q: state.q, offset: state.offset }));
    } catch (err) {
      $("results").replaceChildren();
      $("pager").hidden = true;
      setStatus(err.message, true);
    }
  }

  function render(data) {
    const list = $("results");
    list.replaceChildren();
    const n = data.results.length;
    if (!n) {
      setStatus(data.message || "No results.");
      $("pager").hidden = true;
      return;
    }
    const first = data.offset + 1, last = data.offset + n;
    setStatus(`Results ${first}–${last} · ${data.model}` +
              (data.feedback !== "none" ? ` · ${data.feedback}` : "") +
              ` · generation ${data.generation}`);
    for (const r of data.results) list.append(resultItem(r));
    $("pager").hidden = false;
    $("prev").disabled = data.offset === 0;
    $("next").disabled = !data.has_more;
    $("page-label").textContent = `Page ${Math.floor(data.offset / state.perPage) + 1}`;
  }

  function resultItem(r) {
    const open = el("button", { class: "open", type: "button", text: r.title || r.docid });
    open.addEventListener("click", () => openDocument(r.docid, open));
    const why = el("button", { class: "why", type: "button", "aria-expanded": "false",
                               text: "Why this result?" });
    const panel = el("div", { class: "explain", hidden: "" });
    why.addEventListener("click", () => toggleExplain(r.docid, why, panel));
    const snippet = el("p", { class: "snippet" });
    if (r.snippet) snippet.append(marked(r.snippet.text, r.snippet.matches));
    const meta = el("div", { class: "meta" }, [
      el("span", { class: "rank", text: `#${r.rank}` }), " · ",
      el("span", { class: "docid", text: r.docid }), " · score ",
      el("span", { class: "score", text: r.score.toFixed(4) }), " ", why]);
    return el("li", { class: "result" }, [el("h3", {}, [open]), snippet, meta, panel]);
  }

  async function toggleExplain(docid, button, panel) {
    const opening = panel.hidden;
    button.setAttribute("aria-expanded", String(opening));
    panel.hidden = !opening;
    if (!opening || panel.dataset.loaded) return;
    panel.textContent = "…";
    try {
      const e = await call("explain", { q: state.q, docid, ...settings() });
      const rows = e.terms.map((t) => el("tr", {}, [
        el("td", { text: t.term }), el("td", { text: t.query_weight.toFixed(4) }),
        el("td", { text: String(t.count) }), el("td", { text: t.p_document.toExponential(3) }),
        el("td", { text: t.p_collection.toExponential(3) }),
        el("td", { text: t.contribution.toFixed(4) })]));
      rows.push(el("tr", { class: "total" }, [el("td", { text: "score" }), el("td"),
        el("td"), el("td"), el("td"), el("td", { text: e.score.toFixed(4) })]));
      const head = el("tr", {}, ["term", "p(w|q)", "c(w,d)", "p(w|d)", "p(w|C)",
                                  "p(w|q)·log p(w|d)"].map((h) => el("th", { scope: "col", text: h })));
      panel.replaceChildren(
        el("p", { text: `score ${e.score.toFixed(4)} = Σ p(w|q)·log p(w|d) over the query terms; ` +
                        `|d| = ${e.document_length}, ${e.distinct_terms} distinct terms, ` +
                        `log α_d = ${e.log_alpha.toFixed(4)}` }),
        el("table", {}, [el("thead", {}, [head]), el("tbody", {}, rows)]));
      panel.dataset.loaded = "1";
    } catch (err) {
      panel.textContent = err.message;
    }
  }

  async function openDocument(docid, opener) {
    state.lastResultsFocus = opener || null;
    try {
      const d = await call("document", { docid, q: state.q, model: $("model").value });
      $("doc-title").textContent = d.docid;
      $("doc-meta").textContent = `${d.matches.length} matches of ${d.query_terms.join(", ") || "no terms"}` +
                                  (d.truncated ? " · text truncated" : "");
      $("doc-text").replaceChildren(marked(d.text, d.matches));
      $("results").hidden = true;
      $("pager").hidden = true;
      $("doc-view").hidden = false;
      $("doc-view").focus();
      const firstMark = $("doc-text").querySelector("mark");
      if (firstMark) firstMark.scrollIntoView({ block: "center" });
    } catch (err) {
      setStatus(err.message, true);
    }
  }

  function closeDocument(restoreFocus) {
    if ($("doc-view").hidden) return;
    $("doc-view").hidden = true;
    $("results").hidden = false;
    $("pager").hidden = !$("results").children.length;
    if (restoreFocus && state.lastResultsFocus) state.lastResultsFocus.focus();
  }

  async function init() {
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(0); });
    const page = async (delta) => {
      await search(state.offset + delta * state.perPage);
      window.scrollTo(0, 0);
      $("results").focus({ preventScroll: true });   // keyboard users continue at the top
    };
    $("prev").addEventListener("click", () => page(-1));
    $("next").addEventListener("click", () => page(1));
    $("doc-close").addEventListener("click", () => closeDocument(true));
    $("model").addEventListener("change", showModelParams);
    $("settings-toggle").addEventListener("click", () => {
      const open = $("settings").hidden;
      $("settings").hidden = !open;
      $("settings-toggle").setAttribute("aria-expanded", String(open));
      if (open) $("model").focus();
    });
    document.addEventListener("keydown", (ev) => {
      const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
      if (ev.key === "/" && !typing) { ev.preventDefault(); $("q").focus(); $("q").select(); }
      else if (ev.key === "Escape") {
        if (!$("doc-view").hidden) closeDocument(true);
        else if (!$("settings").hidden) { $("settings").hidden = true; $("settings-toggle").focus(); }
      }
    });
    $("index-select").addEventListener("change", () => { state.index = $("index-select").value; search(0); });
    showModelParams();
    try {
      const resp = await fetch("/api/indexes");
      const data = await resp.json();
      for (const i of data.indexes) {
        $("index-select").append(el("option", { value: i.name, text: `${i.name} (${i.documents.toLocaleString()} docs)` }));
      }
      state.index = data.indexes.length ? data.indexes[0].name : null;
      $("index-select").hidden = data.indexes.length < 2;
    } catch (err) {
      setStatus("Cannot reach the server: " + err.message, true);
    }
    const fromHash = () => {
      const hash = new URLSearchParams(location.hash.slice(1));
      if (!hash.get("q")) return false;
      $("q").value = hash.get("q");
      search(parseInt(hash.get("offset"), 10) || 0);
      return true;
    };
    window.addEventListener("hashchange", fromHash);   // a link to #q=... on this page
    if (!fromHash()) $("q").focus();
    document.body.dataset.ready = "1";
  }
  document.addEventListener("DOMContentLoaded", init);
})();
