// Swagger UI over this service's OpenAPI document. A file, not an inline script, so that the
// page's Content-Security-Policy can forbid inline scripts. validatorUrl null: Swagger UI would
// otherwise send the document to validator.swagger.io for a badge.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  validatorUrl: null,
  tryItOutEnabled: false,
  persistAuthorization: false,
});
