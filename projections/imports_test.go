package projections_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsPointInward keeps the projections an adapter that depends
// inward: the core package on nothing of the module, the read models on
// the domain, the queries' interfaces and the event store's contract and
// migrations (the bus feed also on the stream subscriber), never on the
// commands, the HTTP layer or the binaries.
func TestImportsPointInward(t *testing.T) {
	t.Parallel()
	const module = "github.com/bookingengine/booking"
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
		require.NoError(t, err)
		var own []string
		for _, d := range strings.Fields(string(out)) {
			if strings.HasPrefix(d, module+"/") && d != module+"/"+pkg {
				own = append(own, strings.TrimPrefix(d, module+"/"))
			}
		}
		return own
	}
	require.Empty(t, deps("projections"), "the core package depends on nothing of the module")
	for _, pkg := range []string{"projections/bookings", "projections/availability", "projections/catalog",
		"projections/eventsource", "projections/pgprojection", "projections/busfeed", "projections/readside"} {
		// The bus feed, and the read side that wires it, consume the
		// published topics through package stream/subscriber.
		bus := pkg == "projections/busfeed" || pkg == "projections/readside"
		for _, d := range deps(pkg) {
			ok := d == "domain" || d == "queries" || d == "eventstore" || d == "eventstore/postgres" ||
				strings.HasPrefix(d, "projections") || (pkg == "projections/readside" && d == "eventstore/memory") ||
				(bus && (d == "stream" || d == "stream/subscriber"))
			require.True(t, ok, "%s must not depend on %s", pkg, d)
		}
	}
}
