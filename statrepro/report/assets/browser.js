// statrepro's item browser: every paired item of the report, A beside B. No network, no libraries.
// Item texts come from the models and the harnesses: they only ever reach the page through textContent
// (el() below appends strings as text nodes), never as HTML.
(() => {
  "use strict";
  const LIST_LIMIT = 300; // rows drawn at first; the rest on request
  const FLAGS = {
    all: ["all items", () => true],
    flipped: ["flipped", (item) => item.harmful || item.beneficial],
    harmful: ["right → wrong (harmful)", (item) => item.harmful],
    beneficial: ["wrong → right (beneficial)", (item) => item.beneficial],
    churn: ["answer churn", (item) => item.churn],
    missing: ["missing runs", (item) => item.missing],
  };
  const state = { data: null, filtered: [], current: null, limit: LIST_LIMIT };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  const $ = (id) => document.getElementById(id);
  const text = (ref) => (ref === undefined || ref < 0 ? null : state.data.strings[ref]);
  const score = (value) => (value === null || value === undefined ? "missing" : Number(value).toFixed(2));
  const itemId = (item) => `${state.data.benchmarks[item.bench].name}/${item.key}`;
  const isFlip = (item) => item.harmful || item.beneficial;

  function setStatus(message, error) {
    const status = $("ib-status");
    status.textContent = message;
    status.classList.toggle("error", Boolean(error));
    $("ib").dataset.state = error ? "error" : "ready";
  }

  async function load() {
    const holder = $("ib-data");
    if (!holder) throw new Error("the item data is missing: the report file is incomplete (cut off before its end)");
    const encoded = holder.textContent.trim();
    const expected = Number(holder.dataset.length);
    if (encoded.length !== expected) {
      throw new Error(`the item data is truncated: ${encoded.length} of ${expected} characters are present; the report file is incomplete`);
    }
    let bytes;
    try {
      const binary = atob(encoded);
      bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    } catch (error) {
      throw new Error("the item data is damaged: it is not valid base64");
    }
    if (typeof DecompressionStream === "undefined") throw new Error("this browser cannot decompress the item data (no DecompressionStream): open the report in a current Chrome, Firefox or Safari");
    let json;
    try {
      json = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
    } catch (error) {
      throw new Error("the item data is damaged: it does not decompress");
    }
    let data;
    try {
      data = JSON.parse(json);
    } catch (error) {
      throw new Error("the item data is damaged: it is not JSON");
    }
    if (data.version !== 1) throw new Error(`the item data has version ${data.version}; this page reads version 1`);
    return data;
  }

  // ---------------------------------------------------------------------------------------------
  // Filters and the list

  function searchText(item) {
    if (item.search === undefined) {
      const parts = [itemId(item), item.subset, text(item.target)];
      for (const run of item.a.concat(item.b)) parts.push(text(run[1]), text(run[2]));
      if (item.explain && item.explain.replay) parts.push(item.explain.replay.text_a, item.explain.replay.text_b);
      item.search = parts.filter((part) => part).join("\n").toLowerCase();
    }
    return item.search;
  }

  function applyFilters() {
    const bench = $("ib-bench").value, flag = FLAGS[$("ib-flag").value][1], cls = $("ib-class").value;
    const subset = $("ib-subset").value, query = $("ib-search").value.trim().toLowerCase();
    state.filtered = state.data.items.filter((item) =>
      (bench === "" || String(item.bench) === bench) && flag(item) &&
      (cls === "" || (cls === "*" ? Boolean(item.explain) : item.explain && item.explain.class === cls)) &&
      (subset === "" || item.subset === subset) && (query === "" || searchText(item).includes(query)));
    state.limit = LIST_LIMIT;
    drawList();
  }

  function outcomeTag(item) {
    if (item.harmful) return el("span", { class: "ib-tag ib-harmful" }, "right → wrong");
    if (item.beneficial) return el("span", { class: "ib-tag ib-beneficial" }, "wrong → right");
    if (item.churn) return el("span", { class: "ib-tag ib-churn" }, "answer changed");
    return "";
  }

  function drawList() {
    const count = $("ib-count");
    count.textContent = `${state.filtered.length} of ${state.data.items.length} items`;
    count.dataset.count = String(state.filtered.length);
    const rows = state.filtered.slice(0, state.limit).map((item) =>
      el("tr", { class: item === state.current ? "ib-current" : null, "data-item": itemId(item), on: { click: () => select(item, true) } },
        el("td", { class: "mono" }, item.key), el("td", {}, item.subset),
        el("td", { class: "num" }, `${score(item.mean_a)} → ${score(item.mean_b)}`),
        el("td", {}, outcomeTag(item), item.missing ? el("span", { class: "ib-tag ib-missing" }, "missing runs") : ""),
        el("td", {}, item.explain ? item.explain.class : "")));
    $("ib-rows").replaceChildren(...rows);
    const more = $("ib-more");
    more.hidden = state.filtered.length <= state.limit;
    more.textContent = `show all ${state.filtered.length}`;
  }

  // ---------------------------------------------------------------------------------------------
  // One item, A beside B

  function block(label, value, attrs) {
    if (value === null || value === undefined || value === "") return null;
    return el("div", attrs || {}, el("div", { class: "ib-label" }, label), el("pre", {}, value));
  }

  function choiceTable(choices) {
    // Modes ppl and clp: each choice's log-likelihood in this run, the most likely one in bold.
    if (!choices) return null;
    const finite = choices.filter((value) => value !== null);
    const best = finite.length ? Math.max(...finite) : null;
    return el("table", { class: "ib-top", "data-field": "choices" },
      el("thead", {}, el("tr", {}, el("th", {}, "choice"), el("th", { class: "num" }, "log-likelihood"))),
      el("tbody", {}, choices.map((value, index) => el("tr", { class: value !== null && value === best ? "differs" : null },
        el("td", {}, String(index)), el("td", { class: "num" }, value === null ? "−∞" : value.toFixed(3))))));
  }

  function runCard(side, runId, run, showPrompt) {
    const [value, prediction, output, prompt, promptHash, choices] = run;
    return el("div", { class: "ib-run", "data-side": side },
      el("div", {}, el("strong", {}, `run ${runId}`), ` · score ${score(value)}`),
      block("extracted answer", text(prediction), { "data-field": "answer" }),
      choiceTable(choices),
      block("output", text(output), { "data-field": "output" }),
      showPrompt ? block(text(prompt) !== null ? "prompt" : "prompt hash", text(prompt) ?? text(promptHash), { "data-field": "prompt" }) : null);
  }

  function samePrompt(item) {
    const refs = item.a.concat(item.b).map((run) => (run[3] >= 0 ? run[3] : run[4]));
    return refs.every((ref) => ref === refs[0]) && refs[0] >= 0 ? refs[0] : null;
  }

  function marked(full, offset, token) {
    // The replay text with the first divergent token marked; the prefix before it is the same on both sides.
    if (typeof offset !== "number" || !token || full.slice(offset, offset + token.length) !== token) return el("pre", {}, full);
    return el("pre", {}, full.slice(0, offset), el("mark", { class: "ib-diverge" }, token), full.slice(offset + token.length));
  }

  function topTable(top, chosen) {
    if (!top) return el("span", { class: "muted" }, "no top logprobs");
    const rows = Object.entries(top).sort((x, y) => y[1] - x[1]).map(([token, logprob]) =>
      el("tr", { class: token === chosen ? "differs" : null }, el("td", { class: "mono" }, JSON.stringify(token)), el("td", { class: "num" }, logprob.toFixed(3))));
    return el("table", { class: "ib-top" }, el("thead", {}, el("tr", {}, el("th", {}, "token"), el("th", { class: "num" }, "logprob"))), el("tbody", {}, rows));
  }

  function explainBlock(explain) {
    const parts = [el("p", {}, el("strong", {}, `explain: ${explain.class}`), ` · ${explain.detail}`)];
    const tokens = explain.tokens || {};
    if (tokens.identical === false) {
      parts.push(el("div", { class: "ib-sides" },
        block(`A's prompt tokens around position ${tokens.position}`, tokens.context_a),
        block(`B's prompt tokens around position ${tokens.position}`, tokens.context_b)));
    }
    const replay = explain.replay;
    if (replay) {
      const at = replay.divergence === null ? "the greedy replays agree" : `first divergent token: ${replay.divergence}`;
      parts.push(el("p", { class: "note" }, `Greedy replays, ${at}.`));
      parts.push(el("div", { class: "ib-sides", "data-field": "replay" },
        el("div", { class: "ib-side" }, el("h4", {}, "A replayed"), marked(replay.text_a, replay.offset, replay.token_a),
          replay.divergence === null ? null : topTable(replay.top_a, replay.token_a)),
        el("div", { class: "ib-side" }, el("h4", {}, "B replayed"), marked(replay.text_b, replay.offset, replay.token_b),
          replay.divergence === null ? null : topTable(replay.top_b, replay.token_b))));
    }
    return el("div", { class: "ib-explain" }, parts);
  }

  function drawItem(item) {
    const bench = state.data.benchmarks[item.bench];
    const link = el("a", { href: "#item=" + encodeURIComponent(bench.name) + "/" + encodeURIComponent(item.key), id: "ib-link" }, "link to this item");
    const shared = samePrompt(item);
    // One row per run index: run i of A beside run i of B (the same seed where both sides ran the same seeds).
    const pairs = [];
    for (let i = 0; i < Math.max(item.a.length, item.b.length); i++) {
      pairs.push(el("div", { class: "ib-sides ib-pair" },
        item.a[i] ? runCard("a", bench.runs_a[i], item.a[i], shared === null) : el("div", { class: "muted" }, "no such run of A"),
        item.b[i] ? runCard("b", bench.runs_b[i], item.b[i], shared === null) : el("div", { class: "muted" }, "no such run of B")));
    }
    const promptLabel = item.a.concat(item.b).some((run) => run[3] >= 0) ? "prompt (the same in every run of A and B)" : "prompt hash (the same in every run of A and B)";
    $("ib-detail").replaceChildren(...[
      el("h3", { "data-item": itemId(item) }, item.key, " ", outcomeTag(item)),
      el("p", {}, `${bench.name} · subset ${item.subset} · score A ${score(item.mean_a)} → B ${score(item.mean_b)} over ${item.a.length}/${item.b.length} runs · `, link),
      block("target", text(item.target), { "data-field": "target" }),
      item.explain ? explainBlock(item.explain) : null,
      shared === null ? null : block(promptLabel, text(shared), { "data-field": "prompt" }),
      el("div", { class: "ib-sides" }, el("h4", {}, `A · ${bench.metric}`), el("h4", {}, `B · ${bench.metric}`)),
      ...pairs,
    ].filter((part) => part !== null));
  }

  function select(item, updateHash) {
    state.current = item;
    for (const row of $("ib-rows").children) row.classList.toggle("ib-current", row.dataset.item === itemId(item));
    drawItem(item);
    if (updateHash) history.replaceState(null, "", "#item=" + encodeURIComponent(state.data.benchmarks[item.bench].name) + "/" + encodeURIComponent(item.key));
  }

  function step(direction, onlyFlips) {
    const list = state.filtered;
    let position = list.indexOf(state.current);
    for (let tries = 0; tries < list.length; tries++) {
      position = position < 0 ? (direction > 0 ? 0 : list.length - 1) : position + direction;
      if (position < 0 || position >= list.length) return;
      if (!onlyFlips || isFlip(list[position])) {
        if (position >= state.limit) { state.limit = position + 1; drawList(); }
        select(list[position], true);
        const row = $("ib-rows").children[position];
        if (row) row.scrollIntoView({ block: "nearest" });
        return;
      }
    }
  }

  function followHash() {
    const match = /^#item=([^/]*)\/(.*)$/.exec(location.hash);
    if (!match) return;
    let name, key;
    try { name = decodeURIComponent(match[1]); key = decodeURIComponent(match[2]); } catch (error) { return; }
    const item = state.data.items.find((candidate) => state.data.benchmarks[candidate.bench].name === name && candidate.key === key);
    if (!item) { setStatus(`The linked item ${name}/${key} is not in this report.`, true); return; }
    setStatus(readyText(), false);
    select(item, false);
    $("items").scrollIntoView();
  }

  // ---------------------------------------------------------------------------------------------
  // The page

  const readyText = () => `${state.data.items.length} paired items in ${state.data.benchmarks.length} benchmark(s).`;

  function options(select, entries) {
    select.replaceChildren(...entries.map(([value, label]) => el("option", { value }, label)));
    return select;
  }

  function drawControls() {
    const data = state.data;
    const subsets = [...new Set(data.items.map((item) => item.subset))].sort();
    const classes = Object.keys(data.explain_classes || {});
    const bar = el("div", { class: "ib-bar" },
      options(el("select", { id: "ib-bench", "aria-label": "benchmark" }), [["", "all benchmarks"], ...data.benchmarks.map((b, i) => [String(i), b.name])]),
      options(el("select", { id: "ib-flag", "aria-label": "outcome" }), Object.entries(FLAGS).map(([value, [label]]) => [value, label])),
      options(el("select", { id: "ib-class", "aria-label": "explain class", disabled: classes.length ? null : "disabled" }),
        [["", classes.length ? "any explain class" : "explain did not run"], ...(classes.length ? [["*", "explained"]] : []), ...classes.map((c) => [c, c])]),
      options(el("select", { id: "ib-subset", "aria-label": "subset" }), [["", "all subsets"], ...subsets.map((s) => [s, s])]),
      el("input", { id: "ib-search", type: "search", placeholder: "search keys, answers, outputs", "aria-label": "search" }),
      el("span", { id: "ib-count", "aria-live": "polite" }),
      el("button", { id: "ib-prev", type: "button", on: { click: () => step(-1, true) } }, "◀ previous flip"),
      el("button", { id: "ib-next", type: "button", on: { click: () => step(1, true) } }, "next flip ▶"));
    for (const id of ["ib-bench", "ib-flag", "ib-class", "ib-subset"]) bar.querySelector("#" + id).addEventListener("change", applyFilters);
    bar.querySelector("#ib-search").addEventListener("input", applyFilters);
    const table = el("div", { class: "ib-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "item"), el("th", {}, "subset"), el("th", { class: "num" }, "score A → B"), el("th", {}, "outcome"), el("th", {}, "explain"))),
      el("tbody", { id: "ib-rows" })));
    const more = el("button", { id: "ib-more", type: "button", hidden: "hidden", on: { click: () => { state.limit = Infinity; drawList(); } } });
    const help = el("p", { class: "ib-help" }, "Keys: ", el("kbd", {}, "n"), " / ", el("kbd", {}, "p"), " next / previous flip, ",
      el("kbd", {}, "j"), " / ", el("kbd", {}, "k"), " next / previous item (in the filtered list). Each item has a link to paste into a ticket.");
    $("ib").append(bar, help, table, more, el("div", { id: "ib-detail" }, el("p", { class: "note" }, "Pick an item to see A beside B.")));
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(event.target.tagName)) return;
    const moves = { n: [1, true], p: [-1, true], j: [1, false], k: [-1, false] };
    if (moves[event.key]) { event.preventDefault(); step(...moves[event.key]); }
  }

  async function start() {
    if (!$("ib")) return;
    try {
      state.data = await load();
    } catch (error) {
      setStatus(`The item browser cannot open: ${error.message}. The rest of the report is unaffected.`, true);
      return;
    }
    drawControls();
    setStatus(readyText(), false);
    applyFilters();
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", followHash);
    followHash();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
