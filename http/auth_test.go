package http_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	bhttp "github.com/bookingengine/booking/http"
)

// sign signs claims with any method and key, bypassing the Minter's checks.
func sign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(tb, err)
	return s
}

// claims returns valid claims of a tenant client, with edits applied.
func claims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":       "user-1",
		"tenant_id": tenantA.String(),
		"role":      "client",
		"scope":     "bookings:read bookings:write",
		"exp":       time.Now().Add(time.Hour).Unix(),
		"iat":       time.Now().Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// writePEM writes a public key (or any DER block) to a temp file.
func writePEM(tb testing.TB, blockType string, der []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key.pem")
	require.NoError(tb, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600))
	return path
}

func mustPKIX(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(tb, err)
	return der
}

func TestVerifierHS256(t *testing.T) {
	t.Parallel()
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	tests := []struct {
		name    string
		token   string
		wantErr error // a jwt sentinel the error must wrap; nil means valid
	}{
		{"valid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil)), nil},
		{"HS384 is in the family", sign(t, jwt.SigningMethodHS384, []byte(testSecret), claims(nil)), nil},
		{"platform admin without tenant", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) {
			c["role"] = "platform_admin"
			delete(c, "tenant_id")
		})), nil},
		{"malformed", "not.a.jwt", jwt.ErrTokenMalformed},
		{"bad signature", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		})), jwt.ErrTokenExpired},
		{"no exp", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "exp") })), jwt.ErrTokenRequiredClaimMissing},
		{"RS256 to an HS256 verifier", sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"unknown role", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["role"] = "root" })), jwt.ErrTokenInvalidClaims},
		{"no tenant for client", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "tenant_id") })), jwt.ErrTokenInvalidClaims},
		{"tenant not a uuid", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["tenant_id"] = "acme" })), jwt.ErrTokenInvalidClaims},
		{"platform admin with tenant", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["role"] = "platform_admin" })), jwt.ErrTokenInvalidClaims},
		{"no sub", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "sub") })), jwt.ErrTokenInvalidClaims},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() })), jwt.ErrTokenUsedBeforeIssued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(tt.token)
			if tt.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, "user-1", p.UserID)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, "unauthorized", bhttp.ErrorCode(err))
			require.NotContains(t, err.Error(), tt.token, "the token is never echoed")
		})
	}
}

func TestVerifierPrincipal(t *testing.T) {
	t.Parallel()
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret})
	require.NoError(t, err)

	p, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) {
		c["role"] = "manager"
		c["scope"] = "  bookings:read   users:read "
	})))
	require.NoError(t, err)
	require.Equal(t, tenantA, p.TenantID)
	require.Equal(t, "manager", p.Role)
	require.True(t, p.HasScope("bookings:read"))
	require.True(t, p.HasScope("users:read"))
	require.False(t, p.HasScope("bookings:write"))
	require.True(t, p.IsStaff())
	require.False(t, p.IsPlatformAdmin())

	p, err = v.Verify(sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) {
		c["role"] = "platform_admin"
		delete(c, "tenant_id")
	})))
	require.NoError(t, err)
	require.Equal(t, uuid.Nil, p.TenantID)
	require.True(t, p.IsPlatformAdmin())
	require.False(t, p.IsStaff())
}

func TestVerifierPublicKeys(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rsaPEMPath := writePEM(t, "PUBLIC KEY", mustPKIX(t, &rsaKey.PublicKey))
	rsaPEM, err := os.ReadFile(rsaPEMPath)
	require.NoError(t, err)

	tests := []struct {
		name  string
		file  string
		token string
		ok    bool
	}{
		{"RS256", rsaPEMPath, sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), true},
		{"RS512 is in the family", rsaPEMPath, sign(t, jwt.SigningMethodRS512, rsaKey, claims(nil)), true},
		{"PKCS1 RSA public key", writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), true},
		{"alg confusion: HS256 keyed with the public key", rsaPEMPath, sign(t, jwt.SigningMethodHS256, rsaPEM, claims(nil)), false},
		{"HS256 with the shared secret", rsaPEMPath, sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil)), false},
		{"alg none", rsaPEMPath, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), false},
		{"ES256", writePEM(t, "PUBLIC KEY", mustPKIX(t, &ecKey.PublicKey)), sign(t, jwt.SigningMethodES256, ecKey, claims(nil)), true},
		{"RS256 to an ES256 verifier", writePEM(t, "PUBLIC KEY", mustPKIX(t, &ecKey.PublicKey)), sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := bhttp.NewVerifier(bhttp.AuthConfig{PublicKeyFile: tt.file})
			require.NoError(t, err)
			_, err = v.Verify(tt.token)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				require.Equal(t, "unauthorized", bhttp.ErrorCode(err))
			}
		})
	}
}

func TestNewVerifierRejectsBadKeys(t *testing.T) {
	t.Parallel()
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPriv, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a pem"), 0o600))

	tests := []struct {
		name string
		file string
	}{
		{"missing file", filepath.Join(t.TempDir(), "absent.pem")},
		{"not PEM", garbage},
		{"private key", writePEM(t, "EC PRIVATE KEY", ecPriv)},
		{"RSA under 2048 bits", writePEM(t, "PUBLIC KEY", mustPKIX(t, &smallRSA.PublicKey))},
		{"P-224", writePEM(t, "PUBLIC KEY", mustPKIX(t, &p224.PublicKey))},
		{"corrupt DER", writePEM(t, "PUBLIC KEY", []byte{1, 2, 3})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := bhttp.NewVerifier(bhttp.AuthConfig{PublicKeyFile: tt.file})
			require.Error(t, err)
		})
	}
}

func TestAuthConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      bhttp.AuthConfig
		problems []string
	}{
		{"secret", bhttp.AuthConfig{Secret: testSecret}, nil},
		{"key file", bhttp.AuthConfig{PublicKeyFile: "/etc/booking/jwt.pem", Leeway: time.Minute}, nil},
		{"neither", bhttp.AuthConfig{}, []string{"set JWT_SECRET or JWT_PUBLIC_KEY_FILE"}},
		{"both, short, bad leeway", bhttp.AuthConfig{Secret: "short", PublicKeyFile: "k.pem", Leeway: -time.Second}, []string{
			"set only one of JWT_SECRET and JWT_PUBLIC_KEY_FILE",
			"JWT_SECRET must be at least 32 bytes, got 5",
			"leeway -1s must be between 0 and 5m",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.problems == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, p := range tt.problems {
				require.Contains(t, err.Error(), p)
			}
		})
	}
}

func TestAuthConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"JWT_SECRET": "s", "JWT_PUBLIC_KEY_FILE": "/k.pem"}
	cfg := bhttp.AuthConfigFromEnv(func(k string) string { return env[k] })
	require.Equal(t, bhttp.AuthConfig{Secret: "s", PublicKeyFile: "/k.pem"}, cfg)
	require.True(t, cfg.Configured())
	require.False(t, bhttp.AuthConfigFromEnv(func(string) string { return "" }).Configured())
}

func TestMinter(t *testing.T) {
	t.Parallel()
	_, err := bhttp.NewMinter("short")
	require.Error(t, err)

	secret, err := bhttp.GenerateSecret()
	require.NoError(t, err)
	require.Len(t, secret, 64)
	other, err := bhttp.GenerateSecret()
	require.NoError(t, err)
	require.NotEqual(t, secret, other)

	m, err := bhttp.NewMinter(secret)
	require.NoError(t, err)
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: secret})
	require.NoError(t, err)

	tests := []struct {
		name string
		req  bhttp.TokenRequest
		ok   bool
	}{
		{"dev platform admin", bhttp.TokenRequest{Subject: "dev", Role: "platform_admin", Scopes: bhttp.AllScopes(), TTL: time.Hour}, true},
		{"tenant admin", bhttp.TokenRequest{Subject: "u", TenantID: tenantA, Role: "admin", TTL: time.Hour}, true},
		{"unknown role", bhttp.TokenRequest{Subject: "u", TenantID: tenantA, Role: "owner", TTL: time.Hour}, false},
		{"client without tenant", bhttp.TokenRequest{Subject: "u", Role: "client", TTL: time.Hour}, false},
		{"platform admin with tenant", bhttp.TokenRequest{Subject: "u", TenantID: tenantA, Role: "platform_admin", TTL: time.Hour}, false},
		{"no subject", bhttp.TokenRequest{TenantID: tenantA, Role: "client", TTL: time.Hour}, false},
		{"no TTL", bhttp.TokenRequest{Subject: "u", TenantID: tenantA, Role: "client"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := m.Mint(time.Now(), tt.req)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			p, err := v.Verify(tok)
			require.NoError(t, err)
			require.Equal(t, tt.req.Subject, p.UserID)
			require.Equal(t, tt.req.TenantID, p.TenantID)
			for _, s := range tt.req.Scopes {
				require.True(t, p.HasScope(s))
			}
		})
	}

	all := bhttp.AllScopes()
	all[0] = "mutated"
	require.NotEqual(t, "mutated", bhttp.AllScopes()[0], "AllScopes hands out copies")
}

func TestAuthenticateMiddleware(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	f.srv.Authenticated().HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		p, ok := bhttp.PrincipalFrom(r.Context())
		require.True(t, ok)
		scopes := make([]string, 0, len(p.Scopes))
		for s := range p.Scopes {
			scopes = append(scopes, s)
		}
		sort.Strings(scopes)
		_ = bhttp.WriteJSON(w, http.StatusOK, map[string]any{"user": p.UserID, "role": p.Role, "tenant": p.TenantID, "scopes": scopes})
	}).Methods(http.MethodGet)

	valid := f.token(t, "u1", "client", tenantA, "bookings:read")
	expired, err := f.minter.Mint(time.Now().Add(-3*time.Hour), bhttp.TokenRequest{Subject: "u1", TenantID: tenantA, Role: "client", TTL: time.Hour})
	require.NoError(t, err)
	otherKey, err := bhttp.NewMinter("a-completely-different-secret-of-32-bytes")
	require.NoError(t, err)
	forged, err := otherKey.Mint(time.Now(), bhttp.TokenRequest{Subject: "u1", TenantID: tenantA, Role: "client", TTL: time.Hour})
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	tests := []struct {
		name      string
		auth      string
		challenge string
	}{
		{"no header", "", `Bearer realm="booking"`},
		{"not Bearer", "Basic dXNlcjpwdw==", `Bearer realm="booking", error="invalid_request"`},
		{"Bearer without token", "Bearer ", `Bearer realm="booking", error="invalid_request"`},
		{"malformed", "Bearer abc.def", `Bearer realm="booking", error="invalid_token"`},
		{"bad signature", "Bearer " + forged, `Bearer realm="booking", error="invalid_token"`},
		{"expired", "Bearer " + expired, `Bearer realm="booking", error="invalid_token"`},
		{"RS256 to HS256 verifier", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil)), `Bearer realm="booking", error="invalid_token"`},
		{"alg none", "Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), `Bearer realm="booking", error="invalid_token"`},
		{"unknown role", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["role"] = "owner" })), `Bearer realm="booking", error="invalid_token"`},
		{"client without tenant", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { delete(c, "tenant_id") })), `Bearer realm="booking", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReq(http.MethodGet, "/me", "")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := f.do(r)
			mustProblem(t, w, http.StatusUnauthorized, "unauthorized")
			require.Equal(t, tt.challenge, w.Header().Get("WWW-Authenticate"))
		})
	}

	t.Run("valid, scheme case-insensitive", func(t *testing.T) {
		t.Parallel()
		w := f.do(newReq(http.MethodGet, "/me", "", header("Authorization", "bearer "+valid)))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.JSONEq(t, `{"user":"u1","role":"client","tenant":"`+tenantA.String()+`","scopes":["bookings:read"]}`, w.Body.String())
	})
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	client := bhttp.Principal{UserID: "c", TenantID: tenantA, Role: "client", Scopes: map[string]struct{}{"bookings:write": {}}}
	admin := bhttp.Principal{UserID: "a", TenantID: tenantA, Role: "admin", Scopes: map[string]struct{}{"users:write": {}}}
	platform := bhttp.Principal{UserID: "p", Role: "platform_admin", Scopes: map[string]struct{}{"tenants:write": {}}}

	tests := []struct {
		name  string
		p     bhttp.Principal
		scope string
		roles []string
		want  string // "" = allowed
	}{
		{"scope granted", client, "bookings:write", nil, ""},
		{"scope missing", client, "users:write", nil, "forbidden"},
		{"role allowed", admin, "users:write", []string{"admin", "manager"}, ""},
		{"role refused", client, "bookings:write", []string{"admin", "manager"}, "forbidden"},
		{"platform admin passes role checks", platform, "tenants:write", []string{"admin"}, ""},
		{"platform admin still needs the scope", platform, "bookings:write", []string{"admin"}, "forbidden"},
		{"no scope, no roles", client, "", nil, ""},
		{"no principal", bhttp.Principal{}, "", nil, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := bhttp.Authorize(tt.p, tt.scope, tt.roles...)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.want, bhttp.ErrorCode(err))
		})
	}
}

func TestRequireScopeAndRole(t *testing.T) {
	t.Parallel()
	f := MustFixture(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.srv.Tenant().Handle("/users", bhttp.RequireScope("users:write")(ok)).Methods(http.MethodPost)
	f.srv.Tenant().Handle("/reports/bookings", bhttp.RequireRole("admin", "manager")(ok)).Methods(http.MethodGet)
	f.srv.Public().Handle("/unguarded", bhttp.RequireScope("users:write")(ok))

	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"scope granted", func() *http.Request {
			return newReq(http.MethodPost, "/users", `{}`, bearer(f.token(t, "u", "admin", tenantA, "users:write")), header("X-Tenant-ID", tenantA.String()))
		}, 204, ""},
		{"scope missing", func() *http.Request {
			return newReq(http.MethodPost, "/users", `{}`, bearer(f.token(t, "u", "admin", tenantA, "users:read")), header("X-Tenant-ID", tenantA.String()))
		}, 403, "forbidden"},
		{"role granted", func() *http.Request {
			return newReq(http.MethodGet, "/reports/bookings", "", bearer(f.token(t, "u", "manager", tenantA)), header("X-Tenant-ID", tenantA.String()))
		}, 204, ""},
		{"role refused", func() *http.Request {
			return newReq(http.MethodGet, "/reports/bookings", "", bearer(f.token(t, "u", "professional", tenantA)), header("X-Tenant-ID", tenantA.String()))
		}, 403, "forbidden"},
		{"guard without authentication fails closed", func() *http.Request {
			return newReq(http.MethodGet, "/unguarded", "")
		}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := f.do(tt.req())
			if tt.code == "" {
				require.Equal(t, tt.status, w.Code, w.Body.String())
				return
			}
			mustProblem(t, w, tt.status, tt.code)
		})
	}
}

func TestClaimsJSON(t *testing.T) {
	t.Parallel()
	c := bhttp.Claims{Role: "platform_admin", Scope: "a b", RegisteredClaims: jwt.RegisteredClaims{Subject: "s"}}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{"role":"platform_admin","scope":"a b","sub":"s"}`, string(b))
}

// TestVerifierRemembersUntilExpiry checks the memory of verified tokens: a
// token verified once passes again, and stops passing once it expires,
// with the parser's error, as if it had never been seen.
func TestVerifierRemembersUntilExpiry(t *testing.T) {
	t.Parallel()
	v, err := bhttp.NewVerifier(bhttp.AuthConfig{Secret: testSecret, Leeway: time.Millisecond})
	require.NoError(t, err)
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second)
	token := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) {
		c["exp"] = exp.Unix()
		c["iat"] = exp.Add(-time.Hour).Unix()
	}))
	if time.Until(exp) > 0 {
		p, err := v.Verify(token)
		require.NoError(t, err)
		require.Equal(t, "user-1", p.UserID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(token)
		if err != nil {
			require.ErrorIs(t, err, jwt.ErrTokenExpired)
			require.False(t, time.Now().Before(exp), "refused before it expired")
			break
		}
		require.True(t, time.Now().Before(deadline), "an expired token still passes")
		time.Sleep(20 * time.Millisecond)
	}
	_, err = v.Verify(token)
	require.ErrorIs(t, err, jwt.ErrTokenExpired, "and stays refused")
}
