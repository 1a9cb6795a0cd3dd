package apidocs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"sync"
)

// files holds everything the docs page loads: the vendored Swagger UI build
// (assets/, see assets/README.md) and the page's own script and styles (web/).
// The license files travel with the build that they cover.
//
//go:embed assets/swagger-ui-bundle.js assets/swagger-ui.css
//go:embed assets/swagger-ui-bundle.js.LICENSE.txt assets/LICENSE assets/NOTICE
//go:embed web/init.js web/page.css
var files embed.FS

//go:embed web/index.html
var pageTemplate string

// Names under which the page refers to its assets.
const (
	bundleJS = "swagger-ui-bundle.js"
	bundleCS = "swagger-ui.css"
	initJS   = "init.js"
	pageCSS  = "page.css"
)

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	version     string // first 16 hex digits of the SHA-256 of body

	gzipOnce sync.Once
	gzipped  []byte // nil when compression does not pay
}

// assets maps the name served under Config.Prefix + "/assets/" to its file.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	m := map[string]*asset{}
	for _, dir := range []string{"assets", "web"} {
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			panic("apidocs: embedded assets: " + err.Error())
		}
		for _, e := range entries {
			body, err := files.ReadFile(path.Join(dir, e.Name()))
			if err != nil {
				panic("apidocs: embedded assets: " + err.Error())
			}
			sum := sha256.Sum256(body)
			m[e.Name()] = &asset{
				body:        body,
				contentType: contentType(e.Name()),
				version:     hex.EncodeToString(sum[:8]),
			}
		}
	}
	return m
}

// contentType returns the media type for an embedded file name. It does not
// consult the system's MIME tables, so that the answer is the same on every
// machine.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	default: // LICENSE, NOTICE, *.txt
		return "text/plain; charset=utf-8"
	}
}

// gzipBody returns the gzip-compressed body, compressing it on first use, or
// nil when the compressed form is not smaller.
func (a *asset) gzipBody() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(a.body)
		if zw.Close() == nil && buf.Len() < len(a.body) {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}
