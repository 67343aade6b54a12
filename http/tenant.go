package http

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// Headers that name the tenant of a tenant-scoped request.
const (
	HeaderTenantID     = "X-Tenant-ID"
	HeaderTenantDomain = "X-Tenant-Domain"
)

// TenantResolver finds a tenant by its domain (X-Tenant-Domain). An unknown
// domain must yield an error whose code is "not_found" (a Coder anywhere in
// the chain); any other error is answered as WriteError maps it (500, or 503
// when it reports itself unavailable). Implementations must be safe for
// concurrent use; domains arrive lower-cased, without a trailing dot.
type TenantResolver interface {
	TenantIDByDomain(ctx context.Context, domain string) (uuid.UUID, error)
}

// TenantFrom returns the tenant the request named and was allowed to act
// in, or uuid.Nil outside a tenant-scoped route.
func TenantFrom(ctx context.Context) uuid.UUID {
	id, _ := ctx.Value(tenantKey).(uuid.UUID)
	return id
}

// WithTenant returns ctx carrying tenant, for tests and for code that acts
// in a tenant without an HTTP request.
func WithTenant(ctx context.Context, tenant uuid.UUID) context.Context {
	return context.WithValue(ctx, tenantKey, tenant)
}

// ResolveTenant is middleware for tenant-scoped routes; it must run after
// Authenticate. The request names its tenant with exactly one of X-Tenant-ID
// (a uuid) and X-Tenant-Domain, even when the token's tenant would do, so
// that a request means the same thing whoever sends it. Answers:
//   - neither or both headers, or an X-Tenant-ID that is not a uuid: 400
//     validation_failed naming the header (a platform admin, who belongs to
//     no tenant, gets the same 400 when it omits the header);
//   - an unknown domain: 404 not_found;
//   - a tenant other than the token's: 403 forbidden (a platform admin may
//     name any tenant).
//
// On success TenantFrom returns the tenant and the request's log lines carry
// tenant_id.
func ResolveTenant(resolver TenantResolver) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				WriteError(w, r, Error(CodeUnauthorized, 0, "authentication required"))
				return
			}
			tenant, err := requestTenant(r, resolver)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			if !p.IsPlatformAdmin() && tenant != p.TenantID {
				WriteError(w, r, Error(CodeForbidden, 0, "the token does not belong to the tenant the request names"))
				return
			}
			ctx := WithTenant(r.Context(), tenant)
			addLogAttrs(ctx, "tenant_id", tenant.String())
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func requestTenant(r *http.Request, resolver TenantResolver) (uuid.UUID, error) {
	idHeader := strings.TrimSpace(r.Header.Get(HeaderTenantID))
	domain := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderTenantDomain))), ".")
	switch {
	case idHeader == "" && domain == "":
		return uuid.Nil, badRequest(HeaderTenantID, "required",
			"name the tenant with the X-Tenant-ID or X-Tenant-Domain header")
	case idHeader != "" && domain != "":
		return uuid.Nil, badRequest(HeaderTenantDomain, "invalid",
			"send only one of X-Tenant-ID and X-Tenant-Domain")
	case idHeader != "":
		id, err := uuid.Parse(idHeader)
		if err != nil || id == uuid.Nil || len(idHeader) != 36 {
			return uuid.Nil, badRequest(HeaderTenantID, "invalid", "X-Tenant-ID must be a uuid")
		}
		return id, nil
	}
	id, err := resolver.TenantIDByDomain(r.Context(), domain)
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return uuid.Nil, Error(CodeNotFound, 0, fmt.Sprintf("no tenant has domain %q", domain))
		}
		return uuid.Nil, fmt.Errorf("resolve tenant domain %q: %w", domain, err)
	}
	return id, nil
}
