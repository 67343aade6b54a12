// Package http is the REST adapter's foundation: problem+json errors
// (RFC 9457) from one code table, bearer-token authentication, tenant
// resolution, Idempotency-Key handling, strict JSON decoding, and the
// Server skeleton whose route groups the endpoint handlers are registered
// into.
//
// It depends on no other package of the module. Errors reach it through
// small interfaces (Coder, FieldLister, ConflictLister, and the methods
// HTTPStatus() int and Unavailable() bool) that the domain implements
// without importing this package, so imports keep pointing inward.
//
// Callers import it under another name, since it shadows net/http:
//
//	import bhttp "github.com/bookingengine/booking/http"
package http
