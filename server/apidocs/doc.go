// Package apidocs serves the readable API documentation of the reference
// server: a Swagger UI page for the OpenAPI 3.1 document at /api/openapi.json.
//
// The page works offline. Its scripts and styles are embedded in the binary:
// the distribution build of Swagger UI from the npm package swagger-ui-dist
// (Apache-2.0; version, checksums and upgrade steps in assets/README.md) and a
// small start-up script of our own. Nothing is loaded from a CDN, and the page
// carries no inline script: it passes the document's URL to the start-up
// script in a data- attribute, so that it runs under the strict
// [ContentSecurityPolicy] it is served with.
//
// Mount [Handler] on both the page's path and its subtree:
//
//	docs := apidocs.Handler(apidocs.Config{})
//	mux.Handle("/api/docs", docs)
//	mux.Handle("/api/docs/", docs)
//
// The handler answers the page at /api/docs and /api/docs/ and its assets
// under /api/docs/assets/. The page asks for each asset with a version taken
// from the asset's content, so those answers may be cached for a year
// ("immutable"); an upgraded build gets new URLs. Assets are sent gzip-encoded
// to clients that accept it. [Config] changes the document's URL, the title
// and the path.
package apidocs
