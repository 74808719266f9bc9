// The dashboard's bridge to ECharts. The server renders each chart as a host element with
// data-chart (its id) and data-option (the ECharts option as JSON, built on the server).
// scan() draws every host whose option is not drawn yet — on load, and from /live.js after a
// refresh — and marks it data-rendered="true". ECharts itself (/vendor/echarts.min.js, about
// 1 MB) is fetched only once a page has a chart, off the page's critical path.
(function () {
  "use strict";

  /** By host element: its chart instance and the option (JSON) last drawn on it; hosts
   *  removed from the page are disposed. */
  const charts = new Map();

  function sweep() {
    for (const [el, entry] of charts) {
      if (!el.isConnected) {
        entry.chart.dispose();
        charts.delete(el);
      }
    }
  }

  function draw(el) {
    const option = el.dataset.option;
    if (!option) return;
    let entry = charts.get(el);
    if (entry && entry.option === option) return;
    let parsed;
    try {
      parsed = JSON.parse(option);
    } catch (err) {
      console.warn("factory: chart " + el.dataset.chart + " has an unreadable option", err);
      return;
    }
    // A refresh that changed the option replaced the host's content: start afresh.
    if (entry && !el.querySelector("canvas")) {
      entry.chart.dispose();
      charts.delete(el);
      entry = undefined;
    }
    if (!entry) {
      entry = { chart: window.echarts.init(el, null, { renderer: "canvas" }), option: null };
      charts.set(el, entry);
    }
    entry.chart.setOption(parsed, true);
    entry.option = option;
    el.dataset.rendered = "true";
  }

  let loading = null;

  /** Fetches ECharts once; resolves when it is there. */
  function loadECharts() {
    if (window.echarts) return Promise.resolve();
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = "/vendor/echarts.min.js";
        script.async = true;
        script.onload = resolve;
        script.onerror = function () {
          loading = null;
          reject(new Error("/vendor/echarts.min.js did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  /** Draws every chart on the page that is not drawn with its current option. */
  function scan() {
    const hosts = document.querySelectorAll("[data-chart][data-option]");
    if (!hosts.length) return;
    if (!window.echarts) {
      loadECharts().then(scan, function (err) {
        console.warn("factory: charts not drawn:", err);
      });
      return;
    }
    sweep();
    for (const el of hosts) draw(el);
  }

  let pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      sweep();
      for (const entry of charts.values()) entry.chart.resize();
    });
  });

  // Draw once the page has been painted and the browser is idle: parsing ECharts takes the
  // main thread for a while, and the page's text must not wait for its charts.
  function later() {
    if ("requestIdleCallback" in window) {
      window.requestIdleCallback(scan, { timeout: 1000 });
    } else {
      setTimeout(scan, 50);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", later);
  } else {
    later();
  }

  window.factoryCharts = { scan: scan };
})();
