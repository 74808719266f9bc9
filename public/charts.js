// The dashboard's bridge to ECharts (loaded from /vendor/echarts.min.js). The WASM app calls
// window.factoryCharts.render(id, optionJson) with chart options the server built; it answers
// false while ECharts has not loaded yet, so the caller can try again.
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

  function host(id) {
    const escaped = window.CSS && CSS.escape ? CSS.escape(id) : String(id).replace(/"/g, '\\"');
    return document.querySelector('[data-chart="' + escaped + '"]');
  }

  /** Draws (or redraws) the chart whose host has data-chart=id. True once it is drawn. */
  function render(id, optionJson) {
    if (!window.echarts) return false;
    const el = host(id);
    if (!el) return false;
    sweep();
    let chart = charts.get(el);
    if (!chart) {
      chart = window.echarts.init(el, null, { renderer: "canvas" });
      charts.set(el, chart);
    }
    chart.setOption(JSON.parse(optionJson), true);
    el.dataset.rendered = "true";
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

  window.factoryCharts = { render: render };
})();
