package http

import (
	"context"
	"net/http"
	"strconv"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/queries"
)

// RegisterCatalog registers the catalog listings on s's tenant group. Each
// serves {"<name>": […], "next_cursor": "…"} (next_cursor absent on the
// last page), items ordered by name (byte order) then id and shaped as the
// single-object read of the same object; limit (default 50, at most 200)
// and cursor page them:
//
//   - GET /resource-categories: scope resources:read, every role;
//   - GET /resources, filtered by category_id, kind and active
//     (true|false): scope resources:read, every role;
//   - GET /users, filtered by role and email: scope users:read, staff
//     only (403 for professionals and clients).
//
// All honour X-Min-Position (504 timeout after queries.MaxWait). Malformed
// parameters are 400 validation_failed naming them; an out-of-range limit
// or unknown kind or role is 422. It must be called before s serves.
func RegisterCatalog(s *Server, h queries.ListCatalogHandler) {
	c := catalogAPI{h: h}
	t := s.Tenant()
	t.HandleFunc("/resource-categories", c.listCategories).Methods(http.MethodGet)
	t.HandleFunc("/resources", c.listResources).Methods(http.MethodGet)
	t.HandleFunc("/users", c.listUsers).Methods(http.MethodGet)
}

type catalogAPI struct{ h queries.ListCatalogHandler }

// bool parses an optional true|false parameter.
func (p *params) bool(name string) *bool {
	s := p.v.Get(name)
	if s == "" {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.bad(name, "must be true or false")
		return nil
	}
	return &b
}

func (c catalogAPI) listCategories(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesRead); err != nil {
			return err
		}
		p := &params{v: r.URL.Query()}
		q := queries.ListResourceCategories{Viewer: viewer(r), Limit: p.int("limit"), Cursor: p.v.Get("cursor")}
		pos, err := p.err(r)
		if err != nil {
			return err
		}
		q.MinPosition = pos
		page, err := c.h.ResourceCategories(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}

func (c catalogAPI) listResources(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeResourcesRead); err != nil {
			return err
		}
		p := &params{v: r.URL.Query()}
		q := queries.ListResources{
			Viewer: viewer(r), CategoryID: p.uuid("category_id"), Kind: domain.ResourceKind(p.v.Get("kind")),
			Active: p.bool("active"), Limit: p.int("limit"), Cursor: p.v.Get("cursor"),
		}
		pos, err := p.err(r)
		if err != nil {
			return err
		}
		q.MinPosition = pos
		page, err := c.h.Resources(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}

func (c catalogAPI) listUsers(w http.ResponseWriter, r *http.Request) {
	handle(w, r, func(ctx context.Context) error {
		if err := scope(r, ScopeUsersRead); err != nil {
			return err
		}
		p := &params{v: r.URL.Query()}
		q := queries.ListUsers{
			Viewer: viewer(r), Role: domain.Role(p.v.Get("role")), Email: p.v.Get("email"),
			Limit: p.int("limit"), Cursor: p.v.Get("cursor"),
		}
		pos, err := p.err(r)
		if err != nil {
			return err
		}
		q.MinPosition = pos
		page, err := c.h.Users(ctx, q)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, page)
	})
}
