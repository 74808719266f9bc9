// The dashboard's bridge to ECharts (loaded from /vendor/echarts.min.js). The server renders
// each chart as a host element with data-chart (its id) and data-option (the ECharts option
// as JSON, built on the server). scan() draws every host whose option is not drawn yet — on
// load, and from /live.js after a refresh — and marks it data-rendered="true".
(function () {
  "use strict";

  /** Chart instances by host element; hosts removed from the page are disposed. */
  const charts = new Map();

  function sweep() {
    for (const [el, chart] of charts) {
      if (!el.isConnected) {
        chart.dispose();
        charts.delete(el);
      }
    }
  }

  function draw(el) {
    const option = el.dataset.option;
    if (!option) return;
    let chart = charts.get(el);
    if (chart && el.dataset.drawn === option && el.dataset.rendered === "true") return;
    let parsed;
    try {
      parsed = JSON.parse(option);
    } catch (err) {
      console.warn("factory: chart " + el.dataset.chart + " has an unreadable option", err);
      return;
    }
    // A refresh that changed the option replaced the host's content: start afresh.
    if (chart && !el.querySelector("canvas")) {
      chart.dispose();
      charts.delete(el);
      chart = undefined;
    }
    if (!chart) {
      chart = window.echarts.init(el, null, { renderer: "canvas" });
      charts.set(el, chart);
    }
    chart.setOption(parsed, true);
    el.dataset.drawn = option;
    el.dataset.rendered = "true";
  }

  /** Draws every chart on the page that is not drawn with its current option. */
  function scan() {
    if (!window.echarts) return false;
    sweep();
    for (const el of document.querySelectorAll("[data-chart][data-option]")) draw(el);
    return true;
  }

  let pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      sweep();
      for (const chart of charts.values()) chart.resize();
    });
  });

  // Both scripts are deferred, ECharts first; draw once the document is parsed.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scan);
  } else {
    scan();
  }

  window.factoryCharts = { scan: scan };
})();
