// The scorecard's charts, drawn with plotly.js (static/dashboard/plotly.min.js) from the JSON the page
// carries (json_script: data, never code). Drawn on load and again whenever htmx swaps in fresh data
// (the 30-second poll, the decision timeline after an action). Each figure's caption already says in
// words what its plot shows, so a reader without JavaScript or sight loses nothing.
"use strict";

(() => {
  // The colours are the page's own tokens (static/dashboard/dashboard.css, :root), read once: one
  // source for the stylesheet and the charts, so a status is the same colour in a badge and a plot.
  const root = getComputedStyle(document.documentElement);
  const token = (name) => root.getPropertyValue(`--${name}`).trim();
  const INK = token("ink");
  const MUTED = token("muted");
  const LINE = token("line");
  const SERIES = token("chart-series");
  const CURRENT = token("chart-current");
  const FAIL = token("fail-fg");
  const WARN = token("chart-warn");
  const PASS = token("pass-fg");
  const TARGETS = [1, 2, 3, 4, 5, 6].map((n) => token(`chart-target-${n}`));
  const CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };

  function layout(extra) {
    return {
      height: 280,
      margin: { l: 56, r: 16, t: 8, b: 36 },
      font: { family: getComputedStyle(document.body).fontFamily, size: 12, color: INK },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      showlegend: true,
      // Above the plot: below it, the legend would collide with date ticks a narrow chart tilts.
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11, color: MUTED } },
      hovermode: "x unified",
      ...extra,
      xaxis: { gridcolor: LINE, linecolor: LINE, automargin: true, ...(extra.xaxis || {}) },
      yaxis: { gridcolor: LINE, linecolor: LINE, zeroline: false, automargin: true, ...(extra.yaxis || {}) },
    };
  }

  function level(name, value, start, end, color, dash) {
    return {
      type: "scatter",
      mode: "lines",
      name: `${name} ${value}`,
      x: [start, end],
      y: [value, value],
      line: { color, width: 1.5, dash },
      hoverinfo: "skip",
    };
  }

  function metric(chart) {
    if (!chart.x.length) return null;
    const traces = [
      {
        type: "scatter",
        mode: chart.x.length > 60 ? "lines" : "lines+markers",
        name: chart.metric,
        x: chart.x,
        y: chart.y,
        line: { color: SERIES, width: 1.6 },
        marker: { size: 4 },
      },
    ];
    const bound = chart.op === ">=" ? "at least" : "at most";
    if (chart.threshold !== null) {
      traces.push(level(`Threshold (${bound})`, chart.threshold, chart.start, chart.end, FAIL, "solid"));
    }
    if (chart.warn !== null) traces.push(level("Warn", chart.warn, chart.start, chart.end, WARN, "dash"));
    return [
      traces,
      layout({
        xaxis: { type: "date", range: [chart.start, chart.end], nticks: 6 },
        yaxis: { title: { text: chart.unit, font: { size: 11 } } },
      }),
    ];
  }

  function drift(chart) {
    // Bins are numbered 1 (the reference's lowest tenth) to 10; the hover says what values each holds.
    const bins = chart.ranges.map((_, n) => String(n + 1));
    const bar = (name, y, color) => ({
      type: "bar",
      name,
      x: bins,
      y,
      customdata: chart.ranges,
      hovertemplate: `${name}: %{y}% of points in %{customdata}<extra></extra>`,
      marker: { color },
    });
    return [
      [bar("Reference period", chart.reference, SERIES), bar("Current window", chart.current, CURRENT)],
      layout({
        barmode: "group",
        hovermode: "closest",
        xaxis: { type: "category", title: { text: "Reference decile (1 = lowest values)", font: { size: 11 } } },
        yaxis: { title: { text: "% of points", font: { size: 11 } }, rangemode: "tozero" },
      }),
    ];
  }

  function targets(block, start, end, yaxis) {
    if (!block.traces.some((trace) => trace.x.length)) return null;
    const traces = block.traces.map((trace, n) => ({
      type: "scatter",
      mode: "lines",
      name: trace.name,
      x: trace.x,
      y: trace.y,
      line: { color: TARGETS[n % TARGETS.length], width: 1.5 },
    }));
    return [traces, layout({ xaxis: { type: "date", range: [start, end], nticks: 6 }, yaxis })];
  }

  function timeline(data) {
    if (!data.x.length) return null;
    const trace = {
      type: "scatter",
      mode: "lines+markers",
      name: "Decision",
      x: data.x,
      y: data.y,
      line: { shape: "hv", color: MUTED, width: 1.5 },
      marker: { size: 7, color: data.y.map((go) => (go ? PASS : FAIL)) },
      text: data.y.map((go) => (go ? "Go" : "No-go")),
      hovertemplate: "%{x}: %{text}<extra></extra>",
    };
    return [
      [trace],
      layout({
        height: 180,
        showlegend: false,
        hovermode: "closest",
        xaxis: { type: "date", nticks: 8 },
        yaxis: { tickvals: [0, 1], ticktext: ["No-go", "Go"], range: [-0.3, 1.3], fixedrange: true },
      }),
    ];
  }

  function draw(id, figure) {
    const element = document.getElementById(id);
    if (!element || !figure) return;
    element.replaceChildren();
    Plotly.react(element, figure[0], figure[1], CONFIG);
  }

  function within(root, id) {
    const node = document.getElementById(id);
    return node && (root === node || root.contains(node)) ? node : null;
  }

  function drawCharts(root) {
    const source = within(root, "chart-data");
    if (source) {
      const data = JSON.parse(source.textContent);
      for (const chart of data.metrics) draw(chart.id, metric(chart));
      for (const chart of data.drift) draw(chart.id, drift(chart));
      const health = data.health;
      if (health) {
        draw(
          health.availability.id,
          targets(health.availability, health.start, health.end, {
            title: { text: "% up", font: { size: 11 } },
            range: [-2, 102],
          }),
        );
        draw(
          health.latency.id,
          targets(health.latency, health.start, health.end, {
            title: { text: "ms", font: { size: 11 } },
            rangemode: "tozero",
          }),
        );
      }
    }
    const decisions = within(root, "timeline-data");
    if (decisions) {
      const data = JSON.parse(decisions.textContent);
      if (data) draw(data.id, timeline(data));
    }
  }

  // plotly.min.js loads async (the page is usable before its 4.8 MB are parsed): draw once it is there.
  function whenPlotly(draw) {
    if (typeof Plotly !== "undefined") {
      draw();
      return;
    }
    document.getElementById("plotly-js")?.addEventListener("load", draw, { once: true });
  }

  // Plotly keeps listeners and state per chart: release them before htmx replaces a chart's element.
  function release(element) {
    if (!element || typeof Plotly === "undefined") return;
    for (const chart of element.querySelectorAll(".js-plotly-plot")) Plotly.purge(chart);
  }

  if (typeof htmx === "undefined") return;
  document.addEventListener("htmx:beforeSwap", (event) => release(event.detail.target));
  document.addEventListener("htmx:oobBeforeSwap", (event) => release(event.detail.target || event.target));
  document.addEventListener("readiness:beforerefresh", (event) => release(event.target));
  htmx.onLoad((root) => whenPlotly(() => drawCharts(root)));
})();
