// Starts Swagger UI on the element #swagger-ui. The OpenAPI document's URL
// comes from that element's data-spec-url attribute, so the page carries no
// inline script and runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  function start() {
    var root = document.getElementById("swagger-ui");
    if (!root || typeof window.SwaggerUIBundle !== "function") {
      return;
    }
    window.ui = window.SwaggerUIBundle({
      url: root.getAttribute("data-spec-url"),
      domNode: root,
      deepLinking: true,
      filter: true,
      displayRequestDuration: true,
      // No badge from the public validator service: the page stays offline.
      validatorUrl: null,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
