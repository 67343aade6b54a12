package stream_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsPointInward keeps the event streams an adapter of the event
// store: the stream packages may use the store (its contract and its
// PostgreSQL migrations), never the domain, the use cases, the HTTP layer
// or the read side, so a consumer built on package subscriber pulls in
// none of them. All dependencies are checked, not only direct ones.
func TestImportsPointInward(t *testing.T) {
	t.Parallel()
	const module = "github.com/bookingengine/booking"
	allowed := []string{module + "/stream", module + "/eventstore"}
	for _, pkg := range []string{"/stream", "/stream/relay", "/stream/subscriber"} {
		out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
		require.NoError(t, err)
		for _, dep := range strings.Fields(string(out)) {
			if dep != module && !strings.HasPrefix(dep, module+"/") {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || dep == a || strings.HasPrefix(dep, a+"/")
			}
			require.True(t, ok, "package %s must not depend on %s", pkg, dep)
		}
	}
}
