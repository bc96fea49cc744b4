// Swagger UI for the v1 API, served by the dashboard itself (no third-party CDN). The document is the committed
// docs/openapi.json, deployed beside the dashboard; "Try it out" goes to the API named in config.json.
import { loadConfig } from "./api.js";

const [config, spec] = await Promise.all([
  loadConfig(),
  fetch("/openapi.json", { cache: "no-cache" }).then((r) => r.json()),
]);
spec.servers = [{ url: config.apiUrl }];
window.SwaggerUIBundle({ spec, dom_id: "#swagger-ui", deepLinking: true });
