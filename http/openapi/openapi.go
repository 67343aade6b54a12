// Package openapi serves the API's OpenAPI 3.1 document and two readers of
// it, Swagger UI and Redoc, with their scripts embedded in the binary so
// that the pages load nothing from a CDN.
//
// The document, openapi.json beside this file, is the contract of every
// endpoint, schema, header and error of the REST API. Package
// http/openapi/validator checks real requests and responses against it;
// the end-to-end tests in cmd/bookingd run through that check and compare
// the document's paths with the routes the server registers, so the
// document cannot drift from the server unnoticed.
package openapi

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	bhttp "github.com/bookingengine/booking/http"
)

// document is the OpenAPI document, served as it is.
//
//go:embed openapi.json
var document []byte

// The documentation UI's files (see assets/README.md for their origin).
var (
	//go:embed assets/swagger-ui-bundle.js
	swaggerBundle []byte
	//go:embed assets/swagger-ui.css
	swaggerCSS []byte
	//go:embed assets/redoc.standalone.js
	redocBundle []byte
)

// Document returns a copy of the OpenAPI document (JSON).
func Document() []byte { return bytes.Clone(document) }

// asset is one embedded file.
type asset struct {
	contentType string
	body        []byte
}

var (
	swaggerAssets = map[string]asset{
		"swagger-ui-bundle.js": {"text/javascript; charset=utf-8", swaggerBundle},
		"swagger-ui.css":       {"text/css; charset=utf-8", swaggerCSS},
	}
	redocAssets = map[string]asset{
		"redoc.standalone.js": {"text/javascript; charset=utf-8", redocBundle},
	}
)

// The pages refer to their files and to the document by relative URLs, so
// they also work behind a gateway that serves the API under a prefix.
const swaggerPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Booking engine API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: true,
  tryItOutEnabled: false
});
</script>
</body>
</html>
`

const redocPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Booking engine API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="openapi.json"></redoc>
<script src="redoc/redoc.standalone.js"></script>
</body>
</html>
`

// Register adds GET /openapi.json, /docs, /docs/{asset}, /redoc and
// /redoc/{asset} to r, which should be a route group that needs neither
// token nor tenant (http.Server.Public). Call it before the server serves.
func Register(r *mux.Router) {
	r.HandleFunc("/openapi.json", serveDocument).Methods(http.MethodGet)
	r.Handle("/docs", page(swaggerPage)).Methods(http.MethodGet)
	r.Handle("/docs/{asset}", assets(swaggerAssets)).Methods(http.MethodGet)
	r.Handle("/redoc", page(redocPage)).Methods(http.MethodGet)
	r.Handle("/redoc/{asset}", assets(redocAssets)).Methods(http.MethodGet)
}

// built is when this binary's embedded files were made, as far as HTTP
// caching can tell: the process start, so a new release is never served
// stale for longer than the max-age.
var built = time.Now()

func serveDocument(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "openapi.json", built, bytes.NewReader(document))
}

func page(html string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "index.html", built, bytes.NewReader([]byte(html)))
	})
}

func assets(files map[string]asset) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["asset"]
		a, ok := files[name]
		if !ok {
			bhttp.WriteError(w, r, bhttp.Error(bhttp.CodeNotFound, 0, "no file "+name))
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, built, bytes.NewReader(a.body))
	})
}
