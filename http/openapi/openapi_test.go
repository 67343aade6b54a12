package openapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/http/openapi"
)

func serve(t *testing.T, target string) *http.Response {
	t.Helper()
	r := mux.NewRouter()
	openapi.Register(r)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

func TestServesTheDocument(t *testing.T) {
	t.Parallel()
	res := serve(t, "/openapi.json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	b := body(t, res)
	require.Equal(t, string(openapi.Document()), b)
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(b), &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.Contains(t, doc.Paths, "/bookings/{id}/history")

	d := openapi.Document()
	d[0] = 'x'
	require.True(t, bytes.HasPrefix(openapi.Document(), []byte("{")), "Document returns a copy")
}

func TestServesTheDocumentationPages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		page    string
		scripts []string
	}{
		{"/docs", []string{"docs/swagger-ui-bundle.js", "docs/swagger-ui.css"}},
		{"/redoc", []string{"redoc/redoc.standalone.js"}},
	} {
		res := serve(t, tc.page)
		require.Equal(t, http.StatusOK, res.StatusCode, tc.page)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		html := body(t, res)
		require.Contains(t, html, "openapi.json")
		require.NotContains(t, html, "https://", "%s must load nothing from outside", tc.page)
		for _, s := range tc.scripts {
			require.Contains(t, html, `"`+s+`"`)
			asset := serve(t, "/"+s)
			require.Equal(t, http.StatusOK, asset.StatusCode, s)
			if strings.HasSuffix(s, ".js") {
				require.Equal(t, "text/javascript; charset=utf-8", asset.Header.Get("Content-Type"))
			} else {
				require.Equal(t, "text/css; charset=utf-8", asset.Header.Get("Content-Type"))
			}
			require.Greater(t, len(body(t, asset)), 100_000, "%s is the packaged bundle", s)
		}
	}
}

func TestUnknownAssetIsAProblem(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/docs/index.js", "/redoc/swagger-ui.css"} {
		res := serve(t, target)
		require.Equal(t, http.StatusNotFound, res.StatusCode, target)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		require.Contains(t, body(t, res), `"code":"not_found"`)
	}
}
