package apidocs

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/saaskit/saaskit/internal/problem"
)

// Defaults for the zero fields of [Config].
const (
	DefaultSpecURL = "/api/openapi.json"
	DefaultTitle   = "saaskit API"
	DefaultPrefix  = "/api/docs"
)

// ContentSecurityPolicy is the Content-Security-Policy header of the docs
// page. Scripts, styles, the OpenAPI document and the requests made with
// "Try it out" are limited to the page's own origin, and no inline script or
// style element runs. The one source beyond 'self' is img-src data:, for the
// icons that swagger-ui.css embeds as data: URLs. Swagger UI sets its inline
// styles through the DOM (element.style), which style-src does not govern, so
// style-src needs no 'unsafe-inline'; the price is that style attributes
// written inside Markdown descriptions of the API are ignored.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

// Cache-Control of an asset requested with its current version (the page
// always asks for that one), and of any other request for it.
const (
	cacheVersioned   = "public, max-age=31536000, immutable"
	cacheUnversioned = "no-cache"
)

// Config configures [Handler]. The zero value serves the docs of the
// reference server: the page at /api/docs for the document at
// /api/openapi.json.
type Config struct {
	// SpecURL is the URL of the OpenAPI document that the page shows. It must
	// be on the same origin as the page: the Content-Security-Policy lets the
	// page fetch nothing else. Default [DefaultSpecURL].
	SpecURL string

	// Title is the page title. Default [DefaultTitle].
	Title string

	// Prefix is the path of the page, without a trailing slash. The handler
	// answers the page at Prefix and Prefix + "/", and its assets under
	// Prefix + "/assets/". It sees the full request path, so it is mounted
	// without http.StripPrefix. Default [DefaultPrefix].
	Prefix string
}

// Handler returns the handler of the API documentation page: a Swagger UI
// page whose scripts and styles are embedded in the binary, so that it works
// with no network beyond the server itself. It answers GET and HEAD, 405 to
// other methods and 404 to paths under the prefix that it does not know, both
// as problem+json. It is safe for concurrent use.
//
// On a Go 1.22+ [http.ServeMux], mount it on both patterns:
//
//	docs := apidocs.Handler(apidocs.Config{})
//	mux.Handle("/api/docs", docs)
//	mux.Handle("/api/docs/", docs)
func Handler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	h := &handler{prefix: cfg.Prefix, assetsPath: cfg.Prefix + "/assets/"}
	h.page = renderPage(cfg, h.assetsPath)
	return h
}

func (c Config) withDefaults() Config {
	if c.SpecURL == "" {
		c.SpecURL = DefaultSpecURL
	}
	if c.Title == "" {
		c.Title = DefaultTitle
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.Prefix == "/" {
		c.Prefix = ""
	}
	return c
}

var page = template.Must(template.New("page").Parse(pageTemplate))

// renderPage renders the HTML page once; it does not change per request.
func renderPage(cfg Config, assetsPath string) []byte {
	url := func(name string) string {
		return assetsPath + name + "?v=" + assets[name].version
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]string{
		"Title":   cfg.Title,
		"SpecURL": cfg.SpecURL,
		"CSS":     url(bundleCS),
		"PageCSS": url(pageCSS),
		"Bundle":  url(bundleJS),
		"Init":    url(initJS),
	})
	if err != nil {
		// The template and its data are fixed: this is a bug, not input.
		panic("apidocs: render page: " + err.Error())
	}
	return buf.Bytes()
}

type handler struct {
	prefix     string
	assetsPath string
	page       []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	isPage := p == h.prefix || p == h.prefix+"/"
	name, isAsset := strings.CutPrefix(p, h.assetsPath)
	if !isPage && !isAsset {
		problem.Error(w, http.StatusNotFound, "no such documentation page")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Error(w, http.StatusMethodNotAllowed, "the documentation is read-only")
		return
	}
	if isPage {
		h.servePage(w, r)
		return
	}
	a, ok := assets[name]
	if !ok {
		problem.Error(w, http.StatusNotFound, "no such documentation asset")
		return
	}
	serveAsset(w, r, a)
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.page))
}

func serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", cacheVersioned)
	} else {
		hd.Set("Cache-Control", cacheUnversioned)
	}
	body, etag := a.body, `"`+a.version+`"`
	if gz := a.gzipBody(); gz != nil && acceptsGzip(r.Header.Values("Accept-Encoding")) {
		body, etag = gz, `"`+a.version+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero
// quality.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			q = strings.TrimRight(strings.TrimSpace(q), "0")
			return q != "" && q != "0." && q != "."
		}
	}
	return false
}
