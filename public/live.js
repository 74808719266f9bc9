// The dashboard's page plumbing. Pages are rendered on the server; this script shows a new
// rendering of the page without a reload by morphing it into the current DOM with Idiomorph
// (/vendor/idiomorph.min.js), so what the person is doing survives: focus, the text being
// typed, scroll positions, open <details>, drawn charts, and the state of every island (the
// parts that run as WASM). It is used for
//  - live refreshes: the LiveLink island calls factoryLive.refresh() when events arrive;
//  - soft navigation within a page: links and GET forms marked data-soft (selecting a node of
//    the team graph, filtering the feed, opening an artifact) fetch the new URL and morph it,
//    keeping the scroll position; a <select data-autosubmit> submits its form when changed.
// Islands whose props changed are re-hydrated in place (except inside data-keep, where a
// form keeps what the person typed); new islands are hydrated when added.
(function () {
  "use strict";

  let generation = 0;
  /** The navigation under way, if any: a live refresh waits for it instead of racing it. */
  let navigation = null;

  /** Islands in `root` (itself included) that have not been hydrated by this script yet. */
  function hydrateIslands(root) {
    if (!window.__hydrateIsland || !(root instanceof Element)) return;
    const found = root.matches("leptos-island") ? [root] : [];
    for (const el of root.querySelectorAll("leptos-island")) found.push(el);
    for (const el of found) {
      // Nested islands are hydrated by their parent.
      if (el.parentElement && el.parentElement.closest("leptos-island")) continue;
      window.__hydrateIsland(el, el.dataset.component);
    }
  }

  function sameIsland(a, b) {
    return a.dataset.component === b.dataset.component && a.dataset.props === b.dataset.props;
  }

  const callbacks = {
    beforeNodeMorphed(oldNode, newNode) {
      if (oldNode.nodeType !== Node.ELEMENT_NODE) return true;
      if (oldNode.tagName === "LEPTOS-ISLAND") {
        // A placeholder Idiomorph just created for a new island: fill it in (it is hydrated
        // once added).
        if (!oldNode.hasAttribute("data-component")) return true;
        // A form being edited (inside data-keep) stays as the person left it.
        const keep = oldNode.parentElement && oldNode.parentElement.closest("[data-keep]");
        if (!keep && newNode.tagName === "LEPTOS-ISLAND" && !sameIsland(oldNode, newNode)) {
          // New props: the server's rendering replaces the island's content, then it is
          // hydrated again with them.
          oldNode.dataset.props = newNode.dataset.props || "";
          oldNode.dataset.component = newNode.dataset.component;
          oldNode.innerHTML = newNode.innerHTML;
          hydrateIslands(oldNode);
        }
        return false;
      }
      // A drawn chart keeps its canvas while its option is the same.
      if (oldNode.hasAttribute("data-chart") && oldNode.dataset.option === newNode.dataset?.option) {
        return false;
      }
      return true;
    },
    beforeAttributeUpdated(name, element) {
      // An opened <details> stays open; a drawn chart keeps its mark.
      if (name === "open" && element.tagName === "DETAILS") return false;
      if (name === "data-rendered" && element.hasAttribute("data-chart")) return false;
      return true;
    },
    afterNodeAdded(node) {
      hydrateIslands(node);
    },
  };

  /** Fetches `url` and morphs its page into this one. Resolves once shown (or superseded). */
  async function show(url, { push = false, busy = false } = {}) {
    const mine = ++generation;
    if (busy) document.documentElement.classList.add("factory-loading");
    try {
      const res = await fetch(url, { headers: { accept: "text/html" }, credentials: "same-origin" });
      const finalUrl = new URL(res.url || url, location.href);
      if (finalUrl.pathname === "/login") {
        location.assign(finalUrl.href); // the session ended
        return;
      }
      const type = res.headers.get("content-type") || "";
      if (!type.includes("text/html")) {
        throw new Error(`${url} answered ${res.status} ${type}`);
      }
      const html = await res.text();
      if (mine !== generation) return; // a newer navigation or refresh won
      const doc = new DOMParser().parseFromString(html, "text/html");
      if (!window.Idiomorph) throw new Error("/vendor/idiomorph.min.js did not load");
      window.Idiomorph.morph(document.body, doc.body, {
        morphStyle: "outerHTML",
        ignoreActiveValue: true,
        restoreFocus: true,
        callbacks,
      });
      if (doc.title) document.title = doc.title;
      if (push && finalUrl.href !== location.href) history.pushState(null, "", finalUrl.href);
      if (window.factoryCharts) window.factoryCharts.scan();
    } finally {
      if (busy && mine === generation) document.documentElement.classList.remove("factory-loading");
    }
  }

  function sameOrigin(href) {
    try {
      return new URL(href, location.href).origin === location.origin;
    } catch (_) {
      return false;
    }
  }

  document.addEventListener("click", (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = ev.target instanceof Element ? ev.target.closest("a[data-soft]") : null;
    if (!a) return;
    const href = a.getAttribute("href");
    if (!href || !sameOrigin(href)) return;
    ev.preventDefault();
    navigate(href);
  });

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (ev.defaultPrevented || !(form instanceof HTMLFormElement) || !form.hasAttribute("data-soft")) return;
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get") return;
    const url = new URL(form.getAttribute("action") || location.pathname, location.href);
    url.search = "";
    for (const [key, value] of new FormData(form)) {
      if (typeof value === "string" && value !== "") url.searchParams.append(key, value);
    }
    ev.preventDefault();
    navigate(url.href);
  });

  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.requestSubmit();
    }
  });

  window.addEventListener("popstate", () => {
    navigate(location.href, false);
  });

  function fail(err) {
    console.warn("factory: could not show the page:", err);
  }

  /** Shows another URL of this site without a reload; it wins over any refresh under way. */
  function navigate(href, push = true) {
    const shown = show(new URL(href, location.href).href, { push, busy: true });
    const settled = shown.catch(fail).finally(() => {
      if (navigation === settled) navigation = null;
    });
    navigation = settled;
    return shown;
  }

  /** The current page again, rendered fresh (after the navigation under way, if any). */
  function refresh() {
    return navigation ? navigation.then(() => show(location.href)) : show(location.href);
  }

  window.factoryLive = { refresh, navigate };
})();
