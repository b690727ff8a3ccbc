// The page for browsers without WebAssembly, where the Leptos app cannot run at all: the same
// search box, results grid and label buttons in plain JavaScript, with the query encoded by the
// proxy (`{"text": …}`), as the page says. Browsers with WebAssembly never run more of this file
// than the first test.
(function () {
  "use strict";
  if (typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function") return;

  const PAGE_SIZE = 20;
  let apiBase = "";
  let query = "";
  let nextOffset = null;
  const votes = new Map();
  const clientId = (function () {
    try {
      const key = "text2img.client_id";
      let id = localStorage.getItem(key);
      if (!id) {
        id = crypto.randomUUID ? crypto.randomUUID() : "page-" + Math.random();
        localStorage.setItem(key, id);
      }
      return id;
    } catch (e) {
      return "page-" + Math.random();
    }
  })();

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  function url(path) {
    return /^https?:\/\//.test(path) ? path : apiBase.replace(/\/+$/, "") + path;
  }

  async function post(path, body) {
    const response = await fetch(url(path), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (e) {
      /* not the proxy's JSON */
    }
    if (!response.ok) {
      throw new Error((json && json.error && json.error.message) || "the search server answered HTTP " + response.status);
    }
    return json;
  }

  const input = el("input", { id: "query", type: "search", autocomplete: "off", placeholder: "Describe the image, e.g. a red car parked on a street" });
  const status = el("p", { id: "status", role: "status", class: "server" }, [
    "Searching with server-side encoding: this browser cannot run WebAssembly. Your query text is sent to the search server.",
  ]);
  const error = el("p", { id: "error", role: "alert" });
  const summary = el("p", { id: "summary" });
  const grid = el("ul", { id: "grid" });
  const more = el("button", { id: "more", type: "button", hidden: "" }, ["More results"]);

  function card(hit) {
    const caption = hit.caption || hit.id;
    const note = el("p", { class: "vote", "aria-live": "polite" });
    const buttons = [["relevant", "Relevant"], ["irrelevant", "Not relevant"], ["flag", "Flag"]].map(([label, text]) =>
      el("button", { type: "button", class: label, "aria-pressed": "false", onclick: () => vote(hit.id, label, buttons, note) }, [text])
    );
    return el("li", { class: "card", tabindex: "0", "data-id": hit.id }, [
      el("a", { class: "open", href: url(hit.url), target: "_blank", rel: "noopener" }, [
        el("img", { src: url(hit.thumbnail_url), alt: caption, loading: "lazy" }),
      ]),
      el("div", { class: "meta" }, [el("span", { class: "caption" }, [caption]), el("span", { class: "score" }, [hit.score.toFixed(3)])]),
      el("div", { class: "actions", role: "group", "aria-label": "Label this result" }, buttons),
      note,
    ]);
  }

  async function vote(id, clicked, buttons, note) {
    const label = votes.get(id) === clicked ? "none" : clicked;
    note.textContent = "Saving…";
    try {
      await post("/api/feedback", { query: query, image_id: id, label: label, client_id: clientId });
      votes.set(id, label);
      for (const b of buttons) b.setAttribute("aria-pressed", String(b.className === label));
      note.textContent = label === "none" ? "Vote withdrawn" : "Saved: " + { relevant: "relevant", irrelevant: "not relevant", flag: "flagged" }[label];
    } catch (e) {
      note.textContent = "Not saved: " + e.message;
    }
  }

  async function search(offset) {
    error.textContent = "";
    try {
      const answer = await post("/api/search", { text: query, limit: PAGE_SIZE, offset: offset });
      if (offset === 0) {
        grid.replaceChildren();
        votes.clear();
      }
      for (const hit of answer.results) grid.append(card(hit));
      nextOffset = answer.next_offset;
      more.hidden = nextOffset == null;
      const n = grid.children.length;
      summary.textContent = n + (nextOffset == null ? "" : "+") + " results for “" + query + "” · query encoded by the server · search " + Math.round(answer.took_ms) + " ms";
    } catch (e) {
      error.textContent = e.message;
    }
  }

  more.addEventListener("click", () => nextOffset != null && search(nextOffset));
  const form = el("form", { role: "search" }, [
    el("label", { for: "query", class: "visually-hidden" }, ["Describe the image"]),
    input,
    el("button", { type: "submit" }, ["Search"]),
  ]);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    query = input.value.trim();
    if (query) search(0);
  });

  async function start() {
    try {
      const response = await fetch("settings.json");
      if (response.ok) apiBase = (await response.json()).api_base || "";
    } catch (e) {
      /* same origin */
    }
    document.body.replaceChildren(
      el("header", {}, [el("h1", {}, ["text2img"]), el("p", { class: "tagline" }, ["Search the photo collection by describing what you are looking for."])]),
      el("main", {}, [form, el("section", { class: "model" }, [status]), el("section", { class: "results", "aria-label": "Results" }, [error, summary, grid, more])])
    );
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
