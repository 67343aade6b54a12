package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Roles a token may carry. A platform admin runs the platform and belongs to
// no tenant; every other role belongs to exactly one.
const (
	RolePlatformAdmin = "platform_admin"
	RoleAdmin         = "admin"
	RoleManager       = "manager"
	RoleProfessional  = "professional"
	RoleClient        = "client"
)

// Scopes a token may carry in its space-separated scope claim.
const (
	ScopeBookingsWrite  = "bookings:write"
	ScopeBookingsRead   = "bookings:read"
	ScopeResourcesWrite = "resources:write"
	ScopeResourcesRead  = "resources:read"
	ScopeUsersWrite     = "users:write"
	ScopeUsersRead      = "users:read"
	ScopeTenantsWrite   = "tenants:write"
	ScopeTenantsRead    = "tenants:read"
	ScopeReportsRead    = "reports:read"
	ScopeWebhooksWrite  = "webhooks:write"
)

// AllScopes returns every scope the API checks, for tokens that may do
// everything (bookingctl token, the dev-mode platform-admin token). It
// returns a fresh slice each call, so callers may modify it.
func AllScopes() []string {
	return []string{
		ScopeBookingsWrite, ScopeBookingsRead,
		ScopeResourcesWrite, ScopeResourcesRead,
		ScopeUsersWrite, ScopeUsersRead,
		ScopeTenantsWrite, ScopeTenantsRead,
		ScopeReportsRead, ScopeWebhooksWrite,
	}
}

var knownRoles = []string{RolePlatformAdmin, RoleAdmin, RoleManager, RoleProfessional, RoleClient}

// MinSecretBytes is the shortest HS256 secret accepted: HMAC-SHA256 is only
// as strong as its key, and RFC 7518 asks for at least the hash size.
const MinSecretBytes = 32

// DefaultLeeway absorbs clock skew between the token issuer and this server
// when checking exp and iat.
const DefaultLeeway = 30 * time.Second

// Claims are the JWT claims of the contract: sub (user id), tenant_id
// (absent for platform admins), role, scope (space-separated) and exp
// (required).
type Claims struct {
	TenantID string `json:"tenant_id,omitempty"`
	Role     string `json:"role"`
	Scope    string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// Validate checks what the signature cannot: a subject, a known role, and a
// tenant_id that is a uuid for every role but platform_admin and absent for
// platform_admin (a platform admin scoped to one tenant is a contradiction
// the token issuer must resolve, not this server). jwt calls it after the
// standard claims are checked; it reports every problem at once.
func (c Claims) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Subject) == "" {
		errs = append(errs, errors.New("sub is required"))
	}
	if !slices.Contains(knownRoles, c.Role) {
		errs = append(errs, fmt.Errorf("role %q is unknown", c.Role))
	}
	switch {
	case c.Role == RolePlatformAdmin && c.TenantID != "":
		errs = append(errs, errors.New("tenant_id must be absent for platform_admin"))
	case c.Role != RolePlatformAdmin && c.TenantID == "":
		errs = append(errs, fmt.Errorf("tenant_id is required for role %q", c.Role))
	case c.TenantID != "":
		if id, err := uuid.Parse(c.TenantID); err != nil || id == uuid.Nil {
			errs = append(errs, errors.New("tenant_id must be a uuid"))
		}
	}
	return errors.Join(errs...)
}

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID string
	// TenantID is uuid.Nil for a platform admin.
	TenantID uuid.UUID
	Role     string
	// Scopes is shared by every copy of the Principal: read it, never
	// modify it.
	Scopes map[string]struct{}
}

// HasScope reports whether the token granted scope s.
func (p Principal) HasScope(s string) bool {
	_, ok := p.Scopes[s]
	return ok
}

// IsPlatformAdmin reports whether the caller runs the platform rather than a
// tenant. A platform admin may name any tenant and passes every role check.
func (p Principal) IsPlatformAdmin() bool { return p.Role == RolePlatformAdmin }

// IsStaff reports whether the caller administers its tenant (admin or
// manager). A platform admin is not staff of any tenant; where it may act as
// one, check IsPlatformAdmin as well.
func (p Principal) IsStaff() bool { return p.Role == RoleAdmin || p.Role == RoleManager }

func principalFromClaims(c *Claims) Principal {
	p := Principal{UserID: c.Subject, Role: c.Role, Scopes: map[string]struct{}{}}
	if c.TenantID != "" {
		p.TenantID = uuid.MustParse(c.TenantID) // checked by Claims.Validate
	}
	for _, s := range strings.Fields(c.Scope) {
		p.Scopes[s] = struct{}{}
	}
	return p
}

// PrincipalFrom returns the caller that Authenticate verified, and false
// outside an authenticated route.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p, for tests and for code that
// authenticates by other means (an operator tool acting as a user).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// AuthConfig chooses how bearer tokens are verified: with a shared HS256
// secret (JWT_SECRET) or with an RS256/ES256 public key in PEM
// (JWT_PUBLIC_KEY_FILE), never both. With neither, bookingd runs in dev
// mode: it generates a secret (GenerateSecret) and prints a token.
type AuthConfig struct {
	// Secret is the HS256 key, at least MinSecretBytes long.
	Secret string
	// PublicKeyFile is a PEM file holding an RSA (2048 bits or more) or
	// ECDSA (P-256, P-384, P-521) public key, or a certificate.
	PublicKeyFile string
	// Leeway absorbs clock skew; zero means DefaultLeeway.
	Leeway time.Duration
}

// AuthConfigFromEnv reads JWT_SECRET and JWT_PUBLIC_KEY_FILE through getenv
// (os.Getenv in production, a map in tests).
func AuthConfigFromEnv(getenv func(string) string) AuthConfig {
	return AuthConfig{Secret: getenv("JWT_SECRET"), PublicKeyFile: getenv("JWT_PUBLIC_KEY_FILE")}
}

// Configured reports whether a key was given; false means dev mode.
func (c AuthConfig) Configured() bool { return c.Secret != "" || c.PublicKeyFile != "" }

// Validate reports every problem of the configuration at once. It does not
// read the key file; NewVerifier does.
func (c AuthConfig) Validate() error {
	var errs []error
	switch {
	case c.Secret != "" && c.PublicKeyFile != "":
		errs = append(errs, errors.New("set only one of JWT_SECRET and JWT_PUBLIC_KEY_FILE"))
	case !c.Configured():
		errs = append(errs, errors.New("set JWT_SECRET or JWT_PUBLIC_KEY_FILE"))
	}
	if c.Secret != "" && len(c.Secret) < MinSecretBytes {
		errs = append(errs, fmt.Errorf("JWT_SECRET must be at least %d bytes, got %d", MinSecretBytes, len(c.Secret)))
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("leeway %s must be between 0 and 5m", c.Leeway))
	}
	return errors.Join(errs...)
}

// Verifier checks bearer tokens. It accepts only the algorithms of its key's
// family (HS256/384/512 for a secret, RS256/384/512 for an RSA key, the
// curve's ES algorithm for an ECDSA key), so neither "none" nor an
// algorithm-confusion token (HS256 signed with the public key) passes. It is
// safe for concurrent use.
type Verifier struct {
	key    any
	parser *jwt.Parser
	leeway time.Duration
	now    func() time.Time

	// verified remembers tokens that passed, until they expire, so that a
	// client sending the same token with every request pays for its
	// signature and claims once. Bounded by maxVerified.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedToken is a token that passed Verify: its principal and expiry.
type verifiedToken struct {
	principal Principal
	expires   time.Time
}

// maxVerified bounds Verifier's memory of verified tokens; when full it is
// emptied.
const maxVerified = 10_000

// NewVerifier builds a Verifier from cfg. It fails when cfg is invalid or
// the key file cannot be read or holds no usable public key (a private key
// is refused: a verifier has no business holding one).
func NewVerifier(cfg AuthConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	var (
		key     any
		methods []string
	)
	if cfg.Secret != "" {
		key, methods = []byte(cfg.Secret), []string{"HS256", "HS384", "HS512"}
	} else {
		var err error
		if key, methods, err = loadPublicKey(cfg.PublicKeyFile); err != nil {
			return nil, err
		}
	}
	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	return &Verifier{
		key: key, leeway: leeway, now: time.Now, verified: map[string]verifiedToken{},
		parser: jwt.NewParser(
			jwt.WithValidMethods(methods),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
		),
	}, nil
}

func loadPublicKey(path string) (any, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read JWT public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, fmt.Errorf("JWT public key %s: no PEM block", path)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, nil, fmt.Errorf("JWT public key %s: PEM block %q is not a public key", path, block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("JWT public key %s: %w", path, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("JWT public key %s: RSA key of %d bits is too short (2048 minimum)", path, k.N.BitLen())
		}
		return k, []string{"RS256", "RS384", "RS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return k, []string{"ES256"}, nil
		case elliptic.P384():
			return k, []string{"ES384"}, nil
		case elliptic.P521():
			return k, []string{"ES512"}, nil
		}
		return nil, nil, fmt.Errorf("JWT public key %s: unsupported ECDSA curve", path)
	default:
		return nil, nil, fmt.Errorf("JWT public key %s: unsupported key type %T", path, pub)
	}
}

// tokenError is a 401 that keeps the jwt cause for errors.Is.
type tokenError struct {
	detail string
	cause  error
}

func (e *tokenError) Error() string { return e.detail }
func (e *tokenError) Code() string  { return CodeUnauthorized }
func (e *tokenError) Unwrap() error { return e.cause }

// Verify checks token (without the "Bearer " prefix) and returns its
// principal. Every failure is a coded unauthorized error whose detail says
// why (expired, bad signature, unknown role...) without echoing the token;
// errors.Is finds the jwt cause (jwt.ErrTokenExpired and so on).
//
// A token that passed is remembered until it expires: the same string
// passes again without its signature being checked again (its signature,
// claims, not-before and issued-at cannot have changed, and time only
// makes them truer), and its expiry is checked as the parser checks it.
// Safe for concurrent use.
func (v *Verifier) Verify(token string) (Principal, error) {
	v.mu.RLock()
	known, ok := v.verified[token]
	v.mu.RUnlock()
	if ok && v.now().Add(-v.leeway).Before(known.expires) {
		return known.principal, nil
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		if ok {
			v.mu.Lock()
			delete(v.verified, token)
			v.mu.Unlock()
		}
		return Principal{}, &tokenError{detail: tokenFailure(err), cause: err}
	}
	p := principalFromClaims(&c)
	if c.ExpiresAt != nil {
		v.mu.Lock()
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
		v.verified[token] = verifiedToken{principal: p, expires: c.ExpiresAt.Time}
		v.mu.Unlock()
	}
	return p, nil
}

func tokenFailure(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "bearer token is malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "bearer token has expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "bearer token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bearer token signature or algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "bearer token is invalid: " + err.Error()
	default:
		return "bearer token is invalid"
	}
}

// Authenticate is middleware that requires a valid bearer token and puts
// its Principal in the request context (PrincipalFrom). A missing header, a
// scheme other than Bearer, or a token Verify rejects is answered 401
// unauthorized with a WWW-Authenticate challenge (RFC 6750).
func Authenticate(v *Verifier) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			if h == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="booking"`)
				WriteError(w, r, Error(CodeUnauthorized, 0, "missing bearer token in Authorization header"))
				return
			}
			scheme, token, _ := strings.Cut(h, " ")
			token = strings.TrimSpace(token)
			if !strings.EqualFold(scheme, "Bearer") || token == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="booking", error="invalid_request"`)
				WriteError(w, r, Error(CodeUnauthorized, 0, `Authorization header must be "Bearer <token>"`))
				return
			}
			p, err := v.Verify(token)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="booking", error="invalid_token"`)
				WriteError(w, r, err)
				return
			}
			ctx := WithPrincipal(r.Context(), p)
			addLogAttrs(ctx, "user_id", p.UserID, "role", p.Role)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// Authorize decides whether p may go on: scope "" skips the scope check,
// no roles allows any role, and a platform admin satisfies every role (not
// every scope: its token still has to grant the scope). It returns a coded
// unauthorized error for a zero Principal (no authentication ran) and a
// coded forbidden error naming what is missing otherwise. Use it inside a
// handler when the rule depends on the request; RequireScope and
// RequireRole cover fixed rules.
func Authorize(p Principal, scope string, roles ...string) error {
	if p.UserID == "" {
		return Error(CodeUnauthorized, 0, "authentication required")
	}
	if scope != "" && !p.HasScope(scope) {
		return Error(CodeForbidden, 0, fmt.Sprintf("token lacks scope %q", scope))
	}
	if len(roles) > 0 && !p.IsPlatformAdmin() && !slices.Contains(roles, p.Role) {
		return Error(CodeForbidden, 0, fmt.Sprintf("role %q may not do this; allowed: %s", p.Role, strings.Join(roles, ", ")))
	}
	return nil
}

// RequireScope is middleware that lets through only callers whose token
// grants scope (403 forbidden otherwise; 401 when no Authenticate ran
// before it).
func RequireScope(scope string) func(http.Handler) http.Handler {
	return authorizeMiddleware(scope)
}

// RequireRole is middleware that lets through only callers with one of
// roles, or a platform admin (403 forbidden otherwise; 401 when no
// Authenticate ran before it).
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	return authorizeMiddleware("", roles...)
}

func authorizeMiddleware(scope string, roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			if err := Authorize(p, scope, roles...); err != nil {
				WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TokenRequest describes a token to mint.
type TokenRequest struct {
	Subject string
	// TenantID must be uuid.Nil for RolePlatformAdmin and set otherwise.
	TenantID uuid.UUID
	Role     string
	Scopes   []string
	TTL      time.Duration
}

// Minter issues HS256 tokens that a Verifier with the same secret accepts:
// bookingctl token, and bookingd's dev mode. Production deployments with an
// external identity provider verify with a public key and mint nothing
// here. Safe for concurrent use.
type Minter struct {
	secret []byte
}

// NewMinter returns a Minter for secret, which must be at least
// MinSecretBytes long (the rule the Verifier applies).
func NewMinter(secret string) (*Minter, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("JWT secret must be at least %d bytes, got %d", MinSecretBytes, len(secret))
	}
	return &Minter{secret: []byte(secret)}, nil
}

// Mint signs a token valid from now for req.TTL. It refuses a request the
// Verifier would refuse (unknown role, tenant rules, empty subject,
// non-positive TTL), so a minted token always works.
func (m *Minter) Mint(now time.Time, req TokenRequest) (string, error) {
	if req.TTL <= 0 {
		return "", fmt.Errorf("token TTL %s must be positive", req.TTL)
	}
	c := Claims{
		Role:  req.Role,
		Scope: strings.Join(req.Scopes, " "),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   req.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(req.TTL)),
		},
	}
	if req.TenantID != uuid.Nil {
		c.TenantID = req.TenantID.String()
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}

// GenerateSecret returns a random HS256 secret (64 hex characters, 256
// bits) for dev mode, printable and usable as JWT_SECRET as is. It fails
// only when the system's random source does.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate JWT secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
