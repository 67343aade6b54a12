package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	bhttp "github.com/bookingengine/booking/http"
	"github.com/google/uuid"
)

// roles are the values --role accepts, the contract's role claims.
var roles = []string{bhttp.RolePlatformAdmin, bhttp.RoleAdmin, bhttp.RoleManager, bhttp.RoleProfessional, bhttp.RoleClient}

func runToken(ctx context.Context, m *Main, args []string) error {
	fs := m.flagSet("token", "token --role ROLE [--tenant ID] [--sub USER] [--scope \"a b\"] [--ttl DURATION]\n\n"+
		"Mints an HS256 bearer token with JWT_SECRET and prints it alone on stdout.\n"+
		"Every role but platform_admin needs --tenant; platform_admin must not have one.")
	secretFlag := fs.String("jwt-secret", "", "HS256 secret bookingd verifies tokens with (default: env JWT_SECRET)")
	role := fs.String("role", "", "role claim: "+strings.Join(roles, ", "))
	tenantFlag := fs.String("tenant", "", "tenant id (tenant_id claim)")
	sub := fs.String("sub", "bookingctl", "subject (sub claim): the user id the token acts as")
	scope := fs.String("scope", "", "space-separated scopes (default: all)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.parse(args); err != nil {
		return err
	}
	if !slices.Contains(roles, *role) {
		return usagef("--role %q: want one of %s", *role, strings.Join(roles, ", "))
	}
	var tenant uuid.UUID
	switch {
	case *role == bhttp.RolePlatformAdmin && *tenantFlag != "":
		return usagef("--tenant must not be given for platform_admin, which belongs to no tenant")
	case *role != bhttp.RolePlatformAdmin && *tenantFlag == "":
		return usagef("--tenant is required for role %s", *role)
	case *tenantFlag != "":
		var err error
		if tenant, err = parseID("tenant", *tenantFlag); err != nil {
			return err
		}
	}
	if strings.TrimSpace(*sub) == "" {
		return usagef("--sub must not be empty")
	}
	if *ttl <= 0 {
		return usagef("--ttl %s must be positive", *ttl)
	}
	scopes := bhttp.AllScopes()
	if fs.given()["scope"] {
		scopes = strings.Fields(*scope)
		known := bhttp.AllScopes()
		for _, s := range scopes {
			if !slices.Contains(known, s) {
				return usagef("--scope %q is unknown; known scopes: %s", s, strings.Join(known, " "))
			}
		}
	}
	secret := m.fromEnv(secretFlag, "JWT_SECRET")
	if secret == "" {
		return usagef("JWT_SECRET is not set (or pass --jwt-secret)")
	}
	minter, err := bhttp.NewMinter(secret)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	token, err := minter.Mint(m.now(), bhttp.TokenRequest{
		Subject: *sub, TenantID: tenant, Role: *role, Scopes: scopes, TTL: *ttl,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(m.Stdout, token)
	return err
}
