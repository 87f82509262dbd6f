// The API reference: Swagger UI (vendored, see vendor.sh) over this server's /openapi.json.
// A separate file because the Content-Security-Policy allows no inline script.
"use strict";
window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger",
  deepLinking: true,
  // Swagger UI would otherwise send the document to validator.swagger.io: nothing leaves.
  validatorUrl: null,
  tryItOutEnabled: false,
});
