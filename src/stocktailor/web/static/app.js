// Renders every [data-figure] element with the vendored Plotly (no network access needed).
(function () {
  function render(root) {
    if (typeof Plotly === "undefined") { return; }
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.rendered) { return; }
      var fig = JSON.parse(el.dataset.figure);
      // fig.config may carry topojsonURL: geo base layers from /static, not a CDN.
      var config = Object.assign({ displaylogo: false, responsive: true }, fig.config || {});
      Plotly.newPlot(el, fig.data, fig.layout, config);
      el.dataset.rendered = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function (evt) { render(evt.target); });
})();
